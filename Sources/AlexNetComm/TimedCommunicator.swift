import AlexNetCore
import Foundation

/// The wall-clock seconds during which at least one non-blocking collective was in flight (from
/// its start until a test or wait saw it complete), and the part of them that the rank spent
/// blocked in those collectives' calls (starting, testing, waiting). The rest was hidden behind
/// computation. Completion is only seen at a test or wait, so the flight can be shorter than measured.
public final class FlightClock {
    public private(set) var inFlightSeconds = 0.0
    public fileprivate(set) var blockedSeconds = 0.0
    private var outstanding = 0
    private var since = 0.0

    public init() {}

    /// The flight time not spent blocked: communication hidden behind computation.
    public var hiddenSeconds: Double { max(0, inFlightSeconds - blockedSeconds) }

    func reset() {
        inFlightSeconds = 0
        blockedSeconds = 0
        if outstanding > 0 { since = monotonicSeconds() }
    }

    func started() {
        if outstanding == 0 { since = monotonicSeconds() }
        outstanding += 1
    }

    func completed() {
        outstanding -= 1
        if outstanding == 0 { inFlightSeconds += monotonicSeconds() - since }
    }
}

/// Wraps a communicator and measures its collectives.
///
/// With `separateWaiting`, each collective first meets the other ranks at a barrier, and the
/// time there counts as waiting (for a slower rank) rather than as communication.
public final class TimedCommunicator: Communicator {
    public let inner: Communicator
    public var separateWaiting: Bool
    public private(set) var communicationSeconds = 0.0
    /// What a non-blocking collective adds (NonBlocking.swift).
    func addCommunication(_ seconds: Double) { communicationSeconds += seconds }
    func addBytes(_ count: Int, kind: String) { bytes[kind, default: 0] += count }
    public private(set) var waitingSeconds = 0.0
    /// Bytes this rank received from other ranks, per kind of collective (a broadcast's or a
    /// scatter's root receives none): summed over ranks, the traffic of the whole job.
    public private(set) var bytes: [String: Int] = [:]
    /// When non-blocking collectives were in flight, shared with the communicators split from this one.
    public let flight: FlightClock

    /// The thread that made it: the rank's.
    private let rankThread = pthread_self()

    public init(_ inner: Communicator, separateWaiting: Bool = true, flight: FlightClock = FlightClock()) {
        self.inner = inner
        self.separateWaiting = separateWaiting
        self.flight = flight
    }

    public var rank: Int { inner.rank }
    public var size: Int { inner.size }

    public func reset() {
        communicationSeconds = 0
        waitingSeconds = 0
        bytes = [:]
        flight.reset()
    }

    /// Runs `body` (part of a non-blocking collective) as blocked communication, when it runs on
    /// the rank's own thread: a progress thread's starts and tests hold no rank up.
    func blockedInNonBlocking<T>(_ body: () -> T) -> T {
        guard pthread_equal(pthread_self(), rankThread) != 0 else { return body() }
        let start = monotonicSeconds()
        let result = body()
        let seconds = monotonicSeconds() - start
        communicationSeconds += seconds
        flight.blockedSeconds += seconds
        return result
    }

    /// Counts a non-blocking collective's bytes (`TimedRequest` keeps its flight).
    func countStarted(_ kind: String, _ count: Int) {
        bytes[kind, default: 0] += count
    }

    private func timed(_ kind: String, _ count: Int, _ body: () -> Void) {
        if separateWaiting {
            let start = monotonicSeconds()
            inner.barrier()
            waitingSeconds += monotonicSeconds() - start
        }
        let start = monotonicSeconds()
        body()
        communicationSeconds += monotonicSeconds() - start
        bytes[kind, default: 0] += count
    }

    public func broadcast(_ data: UnsafeMutableRawBufferPointer, root: Int) {
        timed("broadcast", rank == root ? 0 : data.count) { inner.broadcast(data, root: root) }
    }

    public func broadcastIdly(_ data: UnsafeMutableRawBufferPointer, root: Int) { inner.broadcastIdly(data, root: root) }

    public func allGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        timed("all-gather", count * (size - 1) * 4) { inner.allGather(send, count: count, into: receive) }
    }

    /// Counted with the even all-gathers: the same traffic, other ranks' blocks received.
    public func allGather(_ send: UnsafePointer<Float>, counts: [Int], into receive: UnsafeMutablePointer<Float>) {
        timed("all-gather", (counts.reduce(0, +) - counts[rank]) * 4) { inner.allGather(send, counts: counts, into: receive) }
    }

    public func reduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        timed("reduce-scatter", count * (size - 1) * 4) { inner.reduceScatterSum(send, count: count, into: receive) }
    }

    public func maximum(_ values: [Int32], idly: Bool) -> [Int32] {
        guard !idly else { return inner.maximum(values, idly: true) }
        var result: [Int32] = []
        timed("maximum", values.count * (size - 1) * 4) { result = inner.maximum(values, idly: false) }
        return result
    }

    /// The sub-communicator, measured separately (its own counters).
    public func split(color: Int, key: Int) -> Communicator {
        TimedCommunicator(inner.split(color: color, key: key), separateWaiting: separateWaiting, flight: flight)
    }

    public func scatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        timed("scatter", rank == root ? 0 : counts[rank]) { inner.scatter(send, counts: counts, into: receive, root: root) }
    }

    public func gather(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        timed("gather", rank == root ? counts.reduce(0, +) - counts[root] : 0) { inner.gather(send, counts: counts, into: receive, root: root) }
    }

    public func allToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        timed("all-to-all", count * (size - 1) * 4) { inner.allToAll(send, count: count, into: receive) }
    }

    public func barrier() { inner.barrier() }
}
