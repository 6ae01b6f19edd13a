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

    /// The line a second signal prints, made in advance (`SignalLine`): a handler only writes it.
    /// A replaced line is never freed (the handler may be reading it); there is one per checkpoint.
    private static let secondSignalLine = Atomic<UInt>(0)
    /// The line SIGALRM prints when no step boundary came in time; made by `install`.
    private static let expiredLine = Atomic<UInt>(0)

    /// Sets the line a second Ctrl-C prints to name `checkpoint` (nil: none yet) of the run in `run`.
    public static func noteLastCheckpoint(_ checkpoint: String?, run: String) {
        let line = checkpoint.map {
            "error: stopped at once by a second interrupt (the step or checkpoint under way is lost); the last good checkpoint is \($0): continue with `alexnet-split train --resume \(run)`\n"
        } ?? "error: stopped at once by a second interrupt, before the first checkpoint of \(run): nothing of this run can be resumed\n"
        secondSignalLine.store(SignalLine.make(line), ordering: .releasing)
    }

    /// Installs the handlers; call once, from the command line. Only the process that `speaks`
    /// (rank 0) prints the second signal's line.
    ///
    /// The handlers do only async-signal-safe work: atomic loads and stores, alarm(2), write(2)
    /// of a line made here beforehand, _exit(2). No String, no allocation, no lock.
    public static func install(speaks: Bool = true) {
        // Touching the atomics here initialises them before a handler can (a handler must not run an initialiser).
        _ = flag.load(ordering: .relaxed)
        if speaks && secondSignalLine.load(ordering: .acquiring) == 0 {
            secondSignalLine.store(SignalLine.make("error: stopped at once by a second interrupt, before training began; nothing was written\n"),
                                   ordering: .releasing)
        }
        if expiredLine.load(ordering: .acquiring) == 0 {
            expiredLine.store(SignalLine.make("error: no step boundary within \(boundaryTimeout) s of the stop request: another rank has probably died; the last checkpoint is kept\n"),
                              ordering: .releasing)
        }
        let handler: @convention(c) (Int32) -> Void = { signal in
            if StopRequest.flag.load(ordering: .acquiring) != 0 {
                SignalLine.write(StopRequest.secondSignalLine.load(ordering: .acquiring))
                _exit(128 + signal)
            }
            StopRequest.flag.store(1, ordering: .releasing)
            alarm(StopRequest.boundaryTimeout)
        }
        let expired: @convention(c) (Int32) -> Void = { _ in
            SignalLine.write(StopRequest.expiredLine.load(ordering: .acquiring))
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
    private static let failureReason = Guarded<String?>(nil)

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

/// A line for a signal handler to print, made beforehand: its length, then its bytes, in one
/// block that is never freed. Held as an address (0: none), which an atomic can hold.
enum SignalLine {
    static func make(_ text: String) -> UInt {
        let bytes = Array(text.utf8)
        let block = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<Int>.size + bytes.count, alignment: MemoryLayout<Int>.alignment)
        block.storeBytes(of: bytes.count, as: Int.self)
        bytes.withUnsafeBytes { (block + MemoryLayout<Int>.size).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return UInt(bitPattern: block)
    }

    /// Writes the line at `address` to stderr (nothing for 0): async-signal-safe (a load and write(2)).
    static func write(_ address: UInt) {
        guard let block = UnsafeRawPointer(bitPattern: address) else { return }
        _ = Glibc.write(2, block + MemoryLayout<Int>.size, block.load(as: Int.self))
    }
}
