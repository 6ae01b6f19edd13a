import AlexNetCore
import Foundation

/// The non-blocking collectives: what lets the next batch travel while the current step computes.
public protocol NonBlockingCollectives {
    /// `broadcast`, started (MPI_Ibcast): `bytes` on `root` reach `bytes` on every other rank
    /// by the time each rank's request has finished.
    func startBroadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest
    /// `scatter`, started (MPI_Iscatterv), with the same arguments.
    func startScatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest
    /// `allToAll(send, count:, into:)`, started (MPI_Ialltoall): what the replicas' bucketed
    /// gradient sum overlaps with the backward pass (`BucketedGradientSum`).
    func startAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest
    /// `allGather(send, count:, into:)`, started (MPI_Iallgather).
    func startAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest
    /// `reduceScatterSum(send, count:, into:)`, started: what a cross-connected layer's input
    /// gradient travels by while the layer computes its weight gradient (`CrossTowerGather`).
    /// The sum is taken in the blocking one's order, so the bits are the same.
    func startReduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest
}

extension SingleProcessCommunicator {
    public func startBroadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest { CompletedRequest() }

    public func startScatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        scatter(send, counts: counts, into: receive, root: root)
        return CompletedRequest()
    }
}

extension TimedCommunicator {
    /// Counted as a broadcast when it is waited for (so a hand-out started in one step and
    /// taken in the next counts in the next, after a reset between them); the seconds spent in
    /// `test` and `wait` count as communication. No barrier first: meeting the other ranks
    /// would defeat the point of not waiting.
    public func startBroadcast(_ data: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        TimedHandOutRequest(startedBy: self, kind: "broadcast", bytes: rank == root ? 0 : data.count) { inner.startBroadcast(data, root: root) }
    }

    public func startScatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        TimedHandOutRequest(startedBy: self, kind: "scatter", bytes: rank == root ? 0 : counts[rank]) {
            inner.startScatter(send, counts: counts, into: receive, root: root)
        }
    }
}

/// A hand-out request whose start, tests and wait add to a `TimedCommunicator`'s communication
/// time, and whose bytes are counted at the first `wait`. (The gradient sum's requests are
/// `TimedRequest`s, which also keep the flight clock.)
private final class TimedHandOutRequest: CollectiveRequest {
    private let owner: TimedCommunicator
    private let inner: CollectiveRequest
    private let kind: String, count: Int
    private var counted = false
    var movesBeforeWait: Bool { inner.movesBeforeWait }

    init(startedBy owner: TimedCommunicator, kind: String, bytes: Int, _ start: () -> CollectiveRequest) {
        (self.owner, self.kind, count) = (owner, kind, bytes)
        let began = monotonicSeconds()
        inner = start()
        owner.addCommunication(monotonicSeconds() - began)
    }

    func test() -> Bool {
        let began = monotonicSeconds()
        let finished = inner.test()
        owner.addCommunication(monotonicSeconds() - began)
        return finished
    }

    func wait() {
        let began = monotonicSeconds()
        inner.wait()
        owner.addCommunication(monotonicSeconds() - began)
        countBytes()
    }

    private func countBytes() {
        if !counted { owner.addBytes(count, kind: kind) }
        counted = true
    }
}

// MARK: the in-process twin

/// The board of one `InProcessGroup`'s non-blocking collectives. The n-th non-blocking
/// collective that each rank starts is the same one (MPI's rule), so requests meet by that
/// number. The root posts its buffer; each other rank copies its part once the root has posted
/// (in `test` or `wait`); the root's request finishes when every other rank has copied, so the
/// root may not reuse its buffer too early. Copies depend only on the root's bytes, so the
/// result is the same whatever order the threads run in.
// @unchecked: `posted` and `started` are read and written only while `condition` is locked, and a
// posted source buffer belongs to the transfer until every reader has copied it.
final class RequestBoard: @unchecked Sendable {
    private let condition = NSCondition()
    /// Per sequence number: the root's buffer and how many ranks have yet to copy from it.
    private var posted: [Int: (source: UnsafeRawPointer, pending: Int)] = [:]
    /// The sequence number of each rank's next request.
    private var started: [Int]

    init(size: Int) { started = Array(repeating: 0, count: size) }

    /// The number of `rank`'s next request.
    func nextSequence(rank: Int) -> Int {
        condition.withLock {
            defer { started[rank] += 1 }
            return started[rank]
        }
    }

    func post(_ sequence: Int, source: UnsafeRawPointer, readers: Int) {
        condition.withLock {
            posted[sequence] = (source, readers)
            condition.broadcast()
        }
    }

    /// A receiver's step: copies with `copy` from the root's buffer once it is posted. True
    /// when done; with `blocking`, waits until it is.
    func receive(_ sequence: Int, blocking: Bool, copy: (UnsafeRawPointer) -> Void) -> Bool {
        condition.lock()
        while posted[sequence] == nil {
            guard blocking else { condition.unlock(); return false }
            condition.wait()
        }
        let source = posted[sequence]!.source
        condition.unlock()
        copy(source)  // the root keeps its buffer until every reader has counted itself out
        condition.withLock {
            posted[sequence]!.pending -= 1
            condition.broadcast()
        }
        return true
    }

    /// The root's step: true once every other rank has copied; with `blocking`, waits until then.
    func released(_ sequence: Int, blocking: Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while posted[sequence]!.pending > 0 {
            guard blocking else { return false }
            condition.wait()
        }
        posted[sequence] = nil
        return true
    }
}

/// One rank's side of an in-process non-blocking collective.
private final class InProcessRequest: CollectiveRequest {
    private var finished = false
    private let advance: (_ blocking: Bool) -> Bool

    init(_ advance: @escaping (_ blocking: Bool) -> Bool) { self.advance = advance }

    /// A receiver copies in `test` once the root has posted.
    var movesBeforeWait: Bool { true }

    func test() -> Bool {
        if !finished { finished = advance(false) }
        return finished
    }

    func wait() {
        if !finished { finished = advance(true) }
    }
}

extension InProcessCommunicator {
    func startBroadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        start(root: root, source: UnsafeRawPointer(bytes.baseAddress)) { source in
            bytes.baseAddress?.copyMemory(from: source, byteCount: bytes.count)
        }
    }

    func startScatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        let offset = counts[..<rank].reduce(0, +)
        if rank == root, counts[rank] > 0, let source = send.baseAddress, let target = receive.baseAddress, source + offset != UnsafeRawPointer(target) {
            target.copyMemory(from: source + offset, byteCount: counts[rank])
        }
        return start(root: root, source: send.baseAddress) { source in
            if counts[self.rank] > 0 { receive.baseAddress!.copyMemory(from: source + offset, byteCount: counts[self.rank]) }
        }
    }

    /// Numbers the request, posts the root's buffer, and returns this rank's request: the root
    /// finishes when the others have copied, the others when they have.
    private func start(root: Int, source: UnsafeRawPointer?, copy: @escaping (UnsafeRawPointer) -> Void) -> CollectiveRequest {
        let board = requests, sequence = board.nextSequence(rank: rank)
        guard size > 1 else { return CompletedRequest() }
        if rank == root {
            // A root with nothing to send still posts, so that the others' requests finish.
            board.post(sequence, source: source ?? UnsafeRawPointer(bitPattern: 1)!, readers: size - 1)
            return InProcessRequest { board.released(sequence, blocking: $0) }
        }
        return InProcessRequest { board.receive(sequence, blocking: $0, copy: copy) }
    }
}
