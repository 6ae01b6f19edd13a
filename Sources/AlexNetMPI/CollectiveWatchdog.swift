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
final class CollectiveWatchdog: Sendable {
    /// The collectives it can name.
    enum Collective: Int {
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

    let timeout: Double
    let rank: Int
    let grace: Double
    /// Seconds within which the launcher notices a lost host by itself, when known.
    let launcherDetection: Double?
    private let abort: @Sendable (Int32) -> Void
    /// Monotonic nanoseconds at which the collective in progress began; 0 when none is.
    private let started = Atomic<UInt64>(0)
    private let kind = Atomic<Int>(0)
    private let runDirectory = Mutex<String?>(nil)

    /// Starts the watching thread. `timeout` must be positive.
    init(timeout: Double, rank: Int, grace: Double = 5, launcherDetection: Double? = nil,
         abort: @escaping @Sendable (Int32) -> Void) {
        precondition(timeout > 0)
        self.timeout = timeout
        self.rank = rank
        self.grace = grace
        self.launcherDetection = launcherDetection
        self.abort = abort
        let thread = Thread { [self] in watch() }
        thread.name = "collective watchdog"
        thread.stackSize = 1 << 18
        thread.start()
    }

    /// The run whose last checkpoint the error message points to.
    func setRunDirectory(_ path: String?) { runDirectory.withLock { $0 = path } }

    func begin(_ collective: Collective) {
        kind.store(collective.rawValue, ordering: .relaxed)
        started.store(Self.now(), ordering: .releasing)
    }

    func end() { started.store(0, ordering: .releasing) }

    /// Runs `body` as the collective in progress.
    @inline(__always) @discardableResult
    func time<T>(_ collective: Collective, _ body: () -> T) -> T {
        begin(collective)
        defer { end() }
        return body()
    }

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

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// The one line printed when a collective has run too long.
    func message(collective: Collective) -> String {
        let run = runDirectory.withLock { $0 }
        let resume = run.map { "the last checkpoint in \($0) can be resumed with `alexnet-split train --resume \($0)`" }
            ?? "the last checkpoint can be resumed with `alexnet-split train --resume <run directory>`"
        return "error: rank \(rank): an MPI collective (\(collective.name)) has not finished after \(Self.format(timeout)) s: "
            + "another rank, its host or the network between them has stopped responding; \(resume) "
            + "(raise --collective-timeout if the network is just slow)"
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }

    private func watch() {
        let limit = UInt64(timeout * 1e9)
        var lastLook = Self.now(), resumed: UInt64 = 0
        while true {
            usleep(500_000)
            let now = Self.now()
            // A look that comes seconds late means this process was stopped (SIGSTOP, a suspended
            // machine): its own collective's clock starts again from here.
            if now &- lastLook > 2_000_000_000 { resumed = now }
            lastLook = now
            let start = max(started.load(ordering: .acquiring), resumed)
            guard started.load(ordering: .relaxed) != 0, now &- start > limit else { continue }
            let collective = Collective(rawValue: kind.load(ordering: .relaxed)) ?? .none
            let line = message(collective: collective) + "\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            if let launcherDetection { usleep(UInt32(min(launcherDetection + 5, 3600) * 1e6)) }
            // MPI_Abort on a thread of its own: it may block on the lost peer.
            let abort = self.abort
            let aborting = Thread { abort(Self.exitCode) }
            aborting.stackSize = 1 << 18
            aborting.start()
            usleep(UInt32(grace * 1e6))
            _exit(Self.exitCode)
        }
    }
}
