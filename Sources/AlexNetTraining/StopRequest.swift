import Foundation

/// Ctrl-C (SIGINT) and SIGTERM ask training to stop at the next step boundary instead of
/// killing it mid-step. Rank 0 decides, and the decision travels with the next batch, so every
/// rank stops after the same step. A second Ctrl-C ends the process at once.
public enum StopRequest {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    /// Whether a stop has been asked for.
    public static var isRequested: Bool { flag != 0 }

    /// Installs the handlers; call once, from the command line.
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { signal in
            if StopRequest.flag != 0 { _exit(128 + signal) }
            StopRequest.flag = 1
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// For tests.
    public static func request() { flag = 1 }
    public static func clear() { flag = 0 }
}
