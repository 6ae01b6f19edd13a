import AlexNetComm
import AlexNetCore

/// A training problem, phrased as one line that names the problem and the fix.
public struct TrainingError: ExitCoded, CustomStringConvertible {
    public let description: String
    /// The exit status it leads to: `.failure` for data and files, `.modelCannotRun`,
    /// `.diverged` for a loss that is no longer finite.
    public let status: ExitStatus
    public var exitCode: Int32 { status.rawValue }
    /// Whether rank 0 has already printed it.
    public let alreadyReported: Bool

    public init(_ description: String, status: ExitStatus = .failure) {
        self.description = description
        self.status = status
        alreadyReported = false
    }

    private init(reportedWith status: ExitStatus) {
        description = "(reported)"
        self.status = status
        alreadyReported = true
    }

    /// An error that rank 0 has printed; other ranks just exit with the same code.
    public static func reported(_ status: ExitStatus) -> TrainingError { TrainingError(reportedWith: status) }
}
