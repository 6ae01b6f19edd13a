import Foundation
import AlexNetCore

/// Writes files so that a reader never sees half of one: to a temporary name beside the
/// target, fsynced, then renamed into place.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        guard let handle = fopen(temporary, "wb") else {
            throw TrainingError("cannot write \(temporary): \(String(cString: strerror(errno))); check that the directory is writable")
        }
        let written = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let flushed = fflush(handle) == 0 && fsync(fileno(handle)) == 0
        let failure = String(cString: strerror(errno))
        fclose(handle)
        guard written == data.count, flushed else {
            unlink(temporary)
            throw TrainingError("could not write \(path): \(failure); \(path) was left as it was")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TrainingError("could not rename \(temporary) to \(path): \(reason)")
        }
    }
}

/// A training problem, phrased as one line that names the problem and the fix.
public struct TrainingError: ExitCoded, CustomStringConvertible {
    public let description: String
    /// The process exit code it leads to: 1 for data and files, 2 for a model that cannot run
    /// as asked, 3 for a diverged loss.
    public let exitCode: Int32
    /// Whether rank 0 has already printed it.
    public let alreadyReported: Bool

    public init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
        alreadyReported = false
    }

    private init(reportedWith exitCode: Int32) {
        description = "(reported)"
        self.exitCode = exitCode
        alreadyReported = true
    }

    /// An error that rank 0 has printed; other ranks just exit with the same code.
    static func reported(exitCode: Int32) -> TrainingError { TrainingError(reportedWith: exitCode) }
}
