import AlexNetCore
import Foundation
import Synchronization

/// Ends the job when an MPI collective does not finish in time.
///
/// A host that vanishes (its network link down, its power cut) does not make a blocking MPI
/// collective fail: over TCP, the peer's data simply stops arriving, and MPI waits for it, for
/// as long as the operating system keeps the connection open (many minutes). So each timed
/// collective records when it started, and a thread looks every half second. When one has run
/// longer than `timeout`, the thread prints one error line and calls `abort` (MPI_Abort). If the
/// process is still there `grace` seconds later (MPI_Abort can wait on the lost peer too), it
/// exits by itself.
///
/// One exception, measured with Open MPI 4.1 and two hosts in network namespaces: once a rank
/// aborts, mpirun tells every host's daemon to kill its ranks and waits for the lost host's
/// daemon to answer. The unsent message then keeps the connection from timing out, and mpirun
/// waits for many minutes. mpirun only gives up on a lost host quickly through its own TCP
/// keepalive (`--mca oob_tcp_keepalive_time/intvl/probes`), and only if nobody aborted first.
/// So when those are set (`launcherDetection`, the seconds mpirun needs to notice), the
/// watchdog prints its line at once but leaves mpirun that long to end the job before aborting.
///
/// The watching thread holds the `CollectiveClock`, never the watchdog; when the watchdog goes
/// (its communicator with it), `deinit` stops the thread, which wakes at once, and joins it.
public final class CollectiveWatchdog: Sendable {
    /// The collectives it can name.
    public enum Collective: Int, Sendable {
        case none, broadcast, allGather, reduceScatter, barrier, scatter, allToAll, maximum, gather

        var name: String {
            switch self {
            case .none: "none"
            case .broadcast: "broadcast"
            case .allGather: "all-gather"
            case .reduceScatter: "reduce-scatter"
            case .barrier: "barrier"
            case .scatter: "scatter"
            case .allToAll: "all-to-all"
            case .maximum: "max-reduce"
            case .gather: "gather"
            }
        }
    }

    /// The exit code of a job that the watchdog ended.
    static let exitCode = ExitStatus.collectiveTimedOut.rawValue

    private let clock: CollectiveClock
    private let thread: WorkerThread

    /// Starts the watching thread. `timeout` must be positive.
    public init(timeout: Double, rank: Int, grace: Double = 5, launcherDetection: Double? = nil,
                abort: @escaping @Sendable (Int32) -> Void) {
        precondition(timeout > 0)
        let clock = CollectiveClock(timeout: timeout, rank: rank, grace: grace, launcherDetection: launcherDetection, abort: abort)
        self.clock = clock
        thread = WorkerThread(name: "collective watchdog", stackSize: 1 << 18, stop: { clock.stop() }) { clock.watch() }
        thread.start()
    }

    deinit {
        thread.stop()
        thread.join()
    }

    /// The run whose last checkpoint the error message points to.
    public func setRunDirectory(_ path: String?) { clock.runDirectory.withLock { $0 = path } }

    /// Runs `body` as the collective in progress.
    @inline(__always) @discardableResult
    public func time<T>(_ collective: Collective, _ body: () -> T) -> T {
        clock.begin(collective)
        defer { clock.end() }
        return body()
    }

    /// The one line printed when a collective has run too long.
    func message(collective: Collective) -> String { clock.message(collective: collective) }

    /// How long mpirun takes to notice a lost host through its TCP keepalive, when the user set
    /// any of its `oob_tcp_keepalive_*` parameters (mpirun passes them to the ranks as
    /// `OMPI_MCA_*` variables); nil when none is set or keepalive is off.
    static func launcherDetection(environment: [String: String]) -> Double? {
        let names = ["time", "intvl", "probes"].map { "OMPI_MCA_oob_tcp_keepalive_" + $0 }
        guard names.contains(where: { environment[$0] != nil }) else { return nil }
        // Open MPI's defaults: 300 s idle, then 9 probes 20 s apart.
        let values = zip(names, [300.0, 20, 9]).map { environment[$0].flatMap(Double.init) ?? $1 }
        guard values[0] > 0 else { return nil }
        return values[0] + values[1] * values[2]
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}

/// What the watching thread shares with the ranks' collectives: when the one in progress
/// began, and what to say and do when it has run too long.
private final class CollectiveClock: Sendable {
    let timeout: Double
    let rank: Int
    let grace: Double
    /// Seconds within which the launcher notices a lost host by itself, when known.
    let launcherDetection: Double?
    let abort: @Sendable (Int32) -> Void
    /// Monotonic nanoseconds at which the collective in progress began; 0 when none is.
    /// Atomics, not a lock: every collective stamps them, and a stamp must never wait for the
    /// watching thread (nor the watching thread for a rank stuck in MPI).
    let started = Atomic<UInt64>(0)
    let kind = Atomic<Int>(0)
    let runDirectory = Guarded<String?>(nil)
    /// Set by `stop`; the thread's look every half second waits on it.
    private let stopping = Guarded(false)

    init(timeout: Double, rank: Int, grace: Double, launcherDetection: Double?, abort: @escaping @Sendable (Int32) -> Void) {
        (self.timeout, self.rank, self.grace, self.launcherDetection, self.abort) = (timeout, rank, grace, launcherDetection, abort)
    }

    func begin(_ collective: CollectiveWatchdog.Collective) {
        kind.store(collective.rawValue, ordering: .relaxed)
        started.store(Self.now(), ordering: .releasing)
    }

    func end() { started.store(0, ordering: .releasing) }

    func stop() {
        stopping.withLock { $0 = true }
        stopping.broadcast()
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    func message(collective: CollectiveWatchdog.Collective) -> String {
        let run = runDirectory.withLock { $0 }
        let resume = run.map { "the last checkpoint in \($0) can be resumed with `alexnet-split train --resume \($0)`" }
            ?? "the last checkpoint can be resumed with `alexnet-split train --resume <run directory>`"
        return "error: rank \(rank): an MPI collective (\(collective.name)) has not finished after \(CollectiveWatchdog.format(timeout)) s: "
            + "another rank, its host or the network between them has stopped responding; \(resume) "
            + "(raise --collective-timeout if the network is just slow)"
    }

    /// The thread's loop: a look every half second until stopped; ends the job when the
    /// collective in progress has run longer than `timeout`.
    func watch() {
        let limit = UInt64(timeout * 1e9)
        var lastLook = Self.now(), resumed: UInt64 = 0
        while !stopping.withLock(waitingUntil: { $0 }, seconds: 0.5, { stopped, _ in stopped }) {
            let now = Self.now()
            // A look that comes seconds late means this process was stopped (SIGSTOP, a suspended
            // machine): its own collective's clock starts again from here.
            if now &- lastLook > 2_000_000_000 { resumed = now }
            lastLook = now
            let start = max(started.load(ordering: .acquiring), resumed)
            guard started.load(ordering: .relaxed) != 0, now &- start > limit else { continue }
            endJob(collective: CollectiveWatchdog.Collective(rawValue: kind.load(ordering: .relaxed)) ?? .none)
        }
    }

    /// Prints the line, leaves the launcher its time, aborts, and exits if the abort hangs.
    /// Nothing stops this once begun: the job is ending.
    private func endJob(collective: CollectiveWatchdog.Collective) -> Never {
        let line = message(collective: collective) + "\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        if let launcherDetection { usleep(UInt32(min(launcherDetection + 5, 3600) * 1e6)) }
        // MPI_Abort on a thread of its own: it may block on the lost peer. Never joined.
        let abort = self.abort
        let aborting = WorkerThread(name: "abort", stackSize: 1 << 18) { abort(CollectiveWatchdog.exitCode) }
        aborting.start()
        usleep(UInt32(grace * 1e6))
        _exit(CollectiveWatchdog.exitCode)
    }
}
