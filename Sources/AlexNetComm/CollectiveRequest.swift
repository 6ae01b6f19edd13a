import Foundation

/// A collective that has been started and may still be moving data (an MPI_Request of a
/// non-blocking collective). Until it is complete, its send buffer must not change and its
/// receive buffer must not be read.
public protocol CollectiveRequest: AnyObject {
    /// Makes progress where the implementation can, and says whether the collective is complete.
    /// Never blocks. Once it has returned true, it keeps returning true.
    func test() -> Bool
    /// Blocks until the collective is complete.
    func wait()
    /// Whether data can move before `wait` (false for the in-process twin, which moves it all
    /// in `wait`): only then can the collective hide behind computation.
    var movesBeforeWait: Bool { get }
}

/// A request that was complete when it was made.
public final class CompletedRequest: CollectiveRequest {
    public init() {}
    public func test() -> Bool { true }
    public func wait() {}
    public var movesBeforeWait: Bool { true }
}

/// A request that does its whole collective when waited on: the in-process twin's non-blocking
/// collectives. Its `test` makes no progress (it returns false until `wait`), so every simulated
/// rank moves the data at the same point of its program, in the order the requests are waited on.
final class DeferredRequest: CollectiveRequest {
    private var body: (() -> Void)?

    init(_ body: @escaping () -> Void) { self.body = body }

    func test() -> Bool { body == nil }
    var movesBeforeWait: Bool { false }

    func wait() {
        body?()
        body = nil
    }
}

extension InProcessCommunicator {
    func startAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        DeferredRequest { [self] in allToAll(send, count: count, into: receive) }
    }

    func startAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        DeferredRequest { [self] in allGather(send, count: count, into: receive) }
    }

    /// The blocking sum at the wait: the same additions in the same order.
    func startReduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        DeferredRequest { [self] in reduceScatterSum(send, count: count, into: receive) }
    }
}

extension SingleProcessCommunicator {
    public func startAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        allToAll(send, count: count, into: receive)
        return CompletedRequest()
    }

    public func startAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        allGather(send, count: count, into: receive)
        return CompletedRequest()
    }

    public func startReduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        reduceScatterSum(send, count: count, into: receive)
        return CompletedRequest()
    }
}

/// Measured like the blocking collectives: bytes counted at the start, and the time spent in
/// the start, the tests and the wait counted as communication; the time in flight is kept
/// apart (`FlightClock`). No barrier first: meeting the other ranks
/// before starting would make the collective blocking.
extension TimedCommunicator {
    public func startAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        countStarted("all-to-all", count * (size - 1) * 4)
        return TimedRequest(self, blockedInNonBlocking { inner.startAllToAll(send, count: count, into: receive) })
    }

    public func startAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        countStarted("all-gather", count * (size - 1) * 4)
        return TimedRequest(self, blockedInNonBlocking { inner.startAllGather(send, count: count, into: receive) })
    }

    public func startReduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        countStarted("reduce-scatter", count * (size - 1) * 4)
        return TimedRequest(self, blockedInNonBlocking { inner.startReduceScatterSum(send, count: count, into: receive) })
    }
}

/// A request of a `TimedCommunicator`: its tests and wait are timed (on the rank's thread only),
/// and its completion ends its flight.
final class TimedRequest: CollectiveRequest {
    private let owner: TimedCommunicator
    private let inner: CollectiveRequest
    private var done = false

    /// Whether its flight has started: at the start, or at the wait when no data moves before it.
    private var flying: Bool

    init(_ owner: TimedCommunicator, _ inner: CollectiveRequest) {
        self.owner = owner
        self.inner = inner
        flying = inner.movesBeforeWait
        if flying { owner.flight.started() }
    }

    var movesBeforeWait: Bool { inner.movesBeforeWait }

    func test() -> Bool {
        guard !done else { return true }
        if owner.blockedInNonBlocking({ inner.test() }) { finish() }
        return done
    }

    func wait() {
        guard !done else { return }
        if !flying {
            flying = true
            owner.flight.started()
        }
        owner.blockedInNonBlocking { inner.wait() }
        finish()
    }

    private func finish() {
        done = true
        if flying { owner.flight.completed() }
    }
}
