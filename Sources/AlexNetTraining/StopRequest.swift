import AlexNetCore
import Foundation
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM ask training to stop at the next step boundary instead of
/// killing it mid-step. Rank 0 decides, and the decision travels with the next batch, so every
/// rank stops after the same step. A second Ctrl-C ends the process at once (exit 130), and the
/// coordinator says which checkpoint is the last good one.
///
/// The signal also arms an alarm: a rank whose peer has died never reaches that boundary (it
/// waits in a collective that cannot finish), and mpirun's SIGTERM to it would otherwise be
/// followed by SIGKILL only after its kill timeout. If the boundary is not reached within
/// `boundaryTimeout` seconds, the rank says so and exits.
///
/// The state a signal handler touches is lock-free atomics (async-signal-safe), never a lock.
public enum StopRequest {
    /// 1 once a stop has been asked for: set by the signal handler or `stop`, read by the coordinator.
    private static let flag = Atomic<Int32>(0)

    /// Whether a stop has been asked for.
    public static var isRequested: Bool { flag.load(ordering: .acquiring) != 0 }

    /// Seconds a stop request may wait for the next step boundary.
    static let boundaryTimeout: UInt32 = 8

    /// Every rank has agreed to stop: no longer a sign of a dead peer.
    static func reachedBoundary() { alarm(0) }

    /// The line a second signal prints, made in advance: a signal handler may only write(2) it.
    /// A replaced line is never freed (the handler may be reading it); there is one per checkpoint.
    /// The address of that line (0: none), as an integer, which an atomic can hold as Sendable.
    private static let secondSignalLine = Atomic<UInt>(0)

    /// Sets the line a second Ctrl-C prints to name `checkpoint` (nil: none yet) of the run in `run`.
    public static func noteLastCheckpoint(_ checkpoint: String?, run: String) {
        let line = checkpoint.map {
            "error: stopped at once by a second interrupt (the step or checkpoint under way is lost); the last good checkpoint is \($0): continue with `alexnet-split train --resume \(run)`\n"
        } ?? "error: stopped at once by a second interrupt, before the first checkpoint of \(run): nothing of this run can be resumed\n"
        secondSignalLine.store(address(strdup(line)), ordering: .releasing)
    }

    private static func address(_ line: UnsafeMutablePointer<CChar>?) -> UInt { line.map { UInt(bitPattern: $0) } ?? 0 }

    /// Installs the handlers; call once, from the command line. Only the process that `speaks`
    /// (rank 0) prints the second signal's line.
    public static func install(speaks: Bool = true) {
        // Touching `flag` here initialises it before a handler can (a handler must not run an initialiser).
        _ = flag.load(ordering: .relaxed)
        if speaks && secondSignalLine.load(ordering: .acquiring) == 0 {
            let line = strdup("error: stopped at once by a second interrupt, before training began; nothing was written\n")
            secondSignalLine.store(address(line), ordering: .releasing)
        }
        let handler: @convention(c) (Int32) -> Void = { signal in
            if StopRequest.flag.load(ordering: .acquiring) != 0 {
                if let line = UnsafePointer<CChar>(bitPattern: StopRequest.secondSignalLine.load(ordering: .acquiring)) {
                    _ = write(2, line, strlen(line))
                }
                _exit(128 + signal)
            }
            StopRequest.flag.store(1, ordering: .releasing)
            alarm(StopRequest.boundaryTimeout)
        }
        let expired: @convention(c) (Int32) -> Void = { _ in
            let message = "error: no step boundary within \(StopRequest.boundaryTimeout) s of the stop request: another rank has probably died; the last checkpoint is kept\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            _exit(ExitStatus.failure.rawValue)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        signal(SIGALRM, expired)
        // A parent may start us with these signals blocked (seen when launched through Foundation's
        // Process): unblock them, before MPI and the simulated ranks start threads that inherit the mask.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &signals, nil)
    }

    /// Why the run must stop, when it is not the user's request: a file the run writes (its
    /// metrics) could not be written. Set on the coordinator; the stop travels as a Ctrl-C's does.
    public static var failure: String? { failureReason.withLock { $0 } }
    private static let failureReason = Mutex<String?>(nil)

    /// Stops the run at the next step boundary because of `reason` (the first reason is kept).
    public static func stop(because reason: String) {
        failureReason.withLock { if $0 == nil { $0 = reason } }
        flag.store(1, ordering: .releasing)
    }

    /// For tests.
    public static func request() { flag.store(1, ordering: .releasing) }
    public static func clear() {
        flag.store(0, ordering: .releasing)
        failureReason.withLock { $0 = nil }
    }
}
