import AlexNetComm
import AlexNetCore
import Foundation

/// Where a run's words go: only the coordinator speaks; other ranks stay silent.
public final class Reporter {
    public let speaks: Bool

    public init(speaks: Bool) { self.speaks = speaks }

    public func say(_ line: String) {
        guard speaks else { return }
        print(line)
        Console.flushOutput()
    }

    /// Prints `error` unless rank 0 already has, and gives the exit code it leads to.
    /// An agreement that failed prints this rank's own error, if it had one, with the code
    /// the ranks agreed on.
    public func exitCode(for error: Error) -> Int32 {
        if let failure = error as? AgreementFailure {
            if let cause = failure.cause { _ = exitCode(for: cause) }
            return failure.exitCode
        }
        guard let error = error as? TrainingError else {
            fail("\(error)")
            return ExitStatus.failure.rawValue
        }
        if !error.alreadyReported { fail(error.description) }
        return error.exitCode
    }

    public func fail(_ message: String) {
        guard speaks else { return }
        Console.writeError("error: \(message)\n")
    }
}

/// Seconds on a monotonic clock.
public func now() -> Double { monotonicSeconds() }

/// `1h02m`, `3m05s` or `12.3s`.
public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%ldh%02ldm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%ldm%02lds", s / 60, s % 60) }
    return String(format: "%.1fs", seconds)
}
