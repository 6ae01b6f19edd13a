import AlexNetComm
import AlexNetCore

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
    public static func reported(exitCode: Int32) -> TrainingError { TrainingError(reportedWith: exitCode) }
}
