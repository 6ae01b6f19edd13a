import Foundation
import Synchronization

/// Several ranks as threads of one process: the simulation mode.
///
/// Each collective posts the caller's buffer on a shared board, waits until every rank has
/// posted, reads what it needs, and waits again before anyone may reuse its buffer. Sums are
/// taken in rank order, which for two ranks is exactly what MPI computes (a+b == b+a).
///
/// Shared by the rank threads, so it is `Sendable`: every stored property is either immutable,
/// a `Slots` board (see there), the `Gate`, or the sub-groups behind a `Mutex`.
public final class InProcessGroup: Sendable {
    public let size: Int
    fileprivate let board: Slots<UnsafeRawPointer?>
    fileprivate let integers: Slots<[Int32]>
    fileprivate let gate: Gate
    /// `split`'s (color, key) per rank, and the sub-groups made from them.
    fileprivate let splitRequests: Slots<(color: Int, key: Int)>
    fileprivate let subgroups = Mutex<[Int: InProcessGroup]>([:])
    /// Where non-blocking collectives meet (NonBlocking.swift).
    let requests: RequestBoard

    public init(size: Int) {
        precondition(size >= 1)
        self.size = size
        board = Slots(count: size, initial: nil)
        integers = Slots(count: size, initial: [])
        gate = Gate(parties: size)
        splitRequests = Slots(count: size, initial: (0, 0))
        requests = RequestBoard(size: size)
    }

    /// The communicator of simulated rank `rank`.
    public func communicator(rank: Int) -> Communicator { InProcessCommunicator(group: self, rank: rank) }

    /// Runs `body(communicator)` on one thread per rank and returns when all have finished.
    /// The threads get large stacks, as an MPI rank's main thread would. `body` runs on every
    /// rank thread at once, so it must be `@Sendable`: whatever it captures is shared by them.
    public func run(_ body: @escaping @Sendable (Communicator) -> Void) {
        let done = DispatchGroup()
        for rank in 0..<size {
            done.enter()
            let thread = Thread { [self] in
                body(communicator(rank: rank))
                done.leave()
            }
            thread.stackSize = 64 << 20
            thread.start()
        }
        done.wait()
    }

    /// Runs `body(communicator)` on one thread per rank, as `run`, and returns what each rank
    /// returned, in rank order.
    public func collect<Value: Sendable>(_ body: @escaping @Sendable (Communicator) -> Value) -> [Value] {
        let results = Slots<Value?>(count: size, initial: nil)
        run { communicator in results[communicator.rank] = body(communicator) }
        return (0..<size).map { results[$0]! }
    }
}

/// One slot per rank, written only by that rank and read by the others after the gate (or by
/// the caller after `run`). A fixed buffer, not an Array: writing an element of an Array shared
/// by threads is a modifying access of the whole array (a data race under Swift's exclusivity
/// rules, which ThreadSanitizer reports), even when every thread writes a different index.
// @unchecked: each rank thread writes only its own slot; the Gate (or the end of `run`) orders every read after the writes.
final class Slots<Element>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int, initial: Element) {
        self.count = count
        base = .allocate(capacity: count)
        base.initialize(repeating: initial, count: count)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    subscript(index: Int) -> Element {
        get { base[index] }
        set { base[index] = newValue }
    }
}

/// A reusable barrier for a fixed number of threads.
// @unchecked: `waiting` and `generation` are read and written only while `condition` is locked.
final class Gate: @unchecked Sendable {
    private let parties: Int
    private var waiting = 0
    private var generation = 0
    private let condition = NSCondition()

    init(parties: Int) { self.parties = parties }

    func wait() {
        condition.lock()
        let arrived = generation
        waiting += 1
        if waiting == parties {
            waiting = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == arrived { condition.wait() }
        }
        condition.unlock()
    }
}

final class InProcessCommunicator: Communicator {
    private let group: InProcessGroup
    let rank: Int
    var size: Int { group.size }

    init(group: InProcessGroup, rank: Int) {
        self.group = group
        self.rank = rank
    }

    var requests: RequestBoard { group.requests }

    /// Posts `pointer`, lets every rank read the board with `read`, then releases the board.
    private func exchange(_ pointer: UnsafeRawPointer, read: (Slots<UnsafeRawPointer?>) -> Void) {
        group.board[rank] = pointer
        group.gate.wait()
        read(group.board)
        group.gate.wait()
    }

    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) {
        guard let base = bytes.baseAddress else { return barrier() }
        exchange(UnsafeRawPointer(base)) { board in
            if rank != root { base.copyMemory(from: board[root]!, byteCount: bytes.count) }
        }
    }

    /// Threads wait on a condition variable, which never spins.
    func broadcastIdly(_ bytes: UnsafeMutableRawBufferPointer, root: Int) { broadcast(bytes, root: root) }

    func allGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        exchange(UnsafeRawPointer(send)) { board in
            for r in 0..<size {
                (receive + r * count).update(from: board[r]!.assumingMemoryBound(to: Float.self), count: count)
            }
        }
    }

    func allGather(_ send: UnsafePointer<Float>, counts: [Int], into receive: UnsafeMutablePointer<Float>) {
        exchange(UnsafeRawPointer(send)) { board in
            var offset = 0
            for r in 0..<size {
                (receive + offset).update(from: board[r]!.assumingMemoryBound(to: Float.self), count: counts[r])
                offset += counts[r]
            }
        }
    }

    func reduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        exchange(UnsafeRawPointer(send)) { board in
            let offset = rank * count
            receive.update(from: board[0]!.assumingMemoryBound(to: Float.self) + offset, count: count)
            for r in 1..<max(size, 1) {
                let other = board[r]!.assumingMemoryBound(to: Float.self) + offset
                for i in 0..<count { receive[i] += other[i] }
            }
        }
    }

    /// Threads wait on a condition variable, so `idly` changes nothing here.
    func maximum(_ values: [Int32], idly: Bool) -> [Int32] {
        group.integers[rank] = values
        group.gate.wait()
        var result = group.integers[0]
        for r in 1..<size { for i in result.indices { result[i] = max(result[i], group.integers[r][i]) } }
        group.gate.wait()
        return result
    }

    func barrier() { group.gate.wait() }

    /// Every rank posts its (color, key); rank 0 makes one sub-group per color; each rank takes
    /// its place in its color's group, ordered by key, then by rank, as MPI_Comm_split orders.
    func split(color: Int, key: Int) -> Communicator {
        group.splitRequests[rank] = (color, key)
        group.gate.wait()
        if rank == 0 {
            var made: [Int: InProcessGroup] = [:]
            let colors = (0..<size).map { group.splitRequests[$0].color }
            for c in Set(colors) { made[c] = InProcessGroup(size: colors.filter { $0 == c }.count) }
            group.subgroups.withLock { $0 = made }
        }
        group.gate.wait()
        let members = (0..<size).filter { group.splitRequests[$0].color == color }
            .sorted { (group.splitRequests[$0].key, $0) < (group.splitRequests[$1].key, $1) }
        let child = group.subgroups.withLock { $0[color]! }.communicator(rank: members.firstIndex(of: rank)!)
        group.gate.wait()  // nobody posts a new split before everyone has read this one
        return child
    }

    func scatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        group.board[rank] = rank == root ? UnsafeRawPointer(send.baseAddress) : nil
        group.gate.wait()
        let offset = counts[..<rank].reduce(0, +)
        if counts[rank] > 0, let source = group.board[root], source + offset != UnsafeRawPointer(receive.baseAddress!) {
            receive.baseAddress!.copyMemory(from: source + offset, byteCount: counts[rank])
        }
        group.gate.wait()
    }

    func gather(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        group.board[rank] = UnsafeRawPointer(send.baseAddress)
        group.gate.wait()
        if rank == root {
            var offset = 0
            for r in 0..<size {
                if counts[r] > 0, let source = group.board[r], source != UnsafeRawPointer(receive.baseAddress! + offset) {
                    (receive.baseAddress! + offset).copyMemory(from: source, byteCount: counts[r])
                }
                offset += counts[r]
            }
        }
        group.gate.wait()
    }

    func allToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        exchange(UnsafeRawPointer(send)) { board in
            for r in 0..<size {
                (receive + r * count).update(from: board[r]!.assumingMemoryBound(to: Float.self) + rank * count, count: count)
            }
        }
    }
}
