import Foundation

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
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
