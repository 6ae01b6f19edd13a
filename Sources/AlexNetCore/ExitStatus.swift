import Synchronization

/// The process's exit codes, all of them (docs/reliability.md lists them). Only the command
/// line ends the process: library code throws errors that carry one of these (`ExitCoded`,
/// whose `exitCode` is the raw value, the number the ranks agree on), or, where it cannot throw
/// (a background thread), calls `JobEnd.now`, which the command line handles.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    /// A runtime failure: data, files, checkpoints, a run folder that holds a run or is in use,
    /// an output that exists, a write that failed.
    case failure = 1
    /// The model cannot run as asked (rank count, replica layout, classes that do not split).
    case modelCannotRun = 2
    /// The loss or the weights became NaN or infinite.
    case diverged = 3
    /// An MPI collective waited past `--collective-timeout` (the watchdog ends the process).
    case collectiveTimedOut = 4
    /// The job does not fit in memory (memory admission).
    case doesNotFit = 5
    /// A usage error: a bad option or value, or an option `--resume` would not use.
    case usage = 64
    /// Stopped by Ctrl-C or SIGTERM at a step boundary, with a checkpoint. A second signal ends
    /// at once with 128 + the signal (130 for SIGINT, 143 for SIGTERM).
    case stopped = 130
}

/// How library code that cannot throw (a read on a background thread that failed) ends the
/// job: through the handler the command line installs, which prints the line and exits. Under
/// mpirun, a process that ends ends the job. Without a handler (tests, library users) it traps
/// with the line.
public enum JobEnd {
    private static let handler = Mutex<(@Sendable (String, ExitStatus) -> Void)?>(nil)

    /// Sets what `now` does; the command line calls it once, at start.
    public static func install(_ end: @escaping @Sendable (_ message: String, _ status: ExitStatus) -> Void) {
        handler.withLock { $0 = end }
    }

    /// Ends the job with `message` (one line, without "error: ") and `status`.
    public static func now(_ message: String, status: ExitStatus = .failure) -> Never {
        if let end = handler.withLock({ $0 }) { end(message, status) }
        fatalError(message)
    }
}
