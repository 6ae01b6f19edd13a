import Foundation

/// The collectives that the towers need (docs/architecture.md, "What crosses between ranks"). Implemented over Open MPI
/// (`AlexNetMPI`) and in-process, one thread per simulated rank (`InProcessGroup`).
///
/// Every rank calls every collective in the same order with the same counts, as in MPI.
public protocol Communicator: AnyObject, NonBlockingCollectives {
    /// This process's (or thread's) index in `0..<size`.
    var rank: Int { get }
    /// Number of ranks.
    var size: Int { get }
    /// Copies `bytes` on `root` into `bytes` on every other rank.
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int)
    /// `broadcast`, for receivers that may wait long: they should sleep rather than spin.
    func broadcastIdly(_ bytes: UnsafeMutableRawBufferPointer, root: Int)
    /// Concatenates every rank's `count` floats, in rank order, into `receive` (`count * size`).
    func allGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>)
    /// The all-gather of blocks of different sizes (MPI_Allgatherv): rank `r` sends `counts[r]`
    /// floats, and every rank receives them all, in rank order, into `receive` (`counts.sum()`
    /// floats); every rank passes the same `counts`.
    func allGather(_ send: UnsafePointer<Float>, counts: [Int], into receive: UnsafeMutablePointer<Float>)
    /// Sums the ranks' `send` buffers (`count * size` each) and leaves block `rank` of the sum,
    /// `count` floats, in `receive`.
    func reduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>)
    /// Element-wise maximum of every rank's `values` (the same length everywhere), returned on
    /// every rank: how ranks agree on a status (`agree`). With `idly`, ranks that may wait long
    /// sleep instead of spinning, as in `broadcastIdly`.
    func maximum(_ values: [Int32], idly: Bool) -> [Int32]
    /// Returns when every rank has called it.
    func barrier()
    /// Splits this communicator (a collective): ranks that pass the same `color` form a new
    /// communicator, ranked by `key` (ties by rank here), as `MPI_Comm_split`.
    func split(color: Int, key: Int) -> Communicator
    /// Rank `r` receives `counts[r]` bytes of `send` (meaningful on `root` only), taken at offset
    /// `counts[0..<r].sum()`, into the start of `receive`; every rank passes the same `counts`.
    func scatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int)
    /// The reverse of `scatter`: rank `r`'s first `counts[r]` bytes of `send` land in `receive`
    /// on `root` (meaningful there only) at offset `counts[0..<r].sum()`; every rank passes the
    /// same `counts`.
    func gather(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int)
    /// Block `j` of `send` (`count` floats) goes to rank `j`; block `i` of `receive` comes from rank `i`.
    func allToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>)
}

public extension Communicator {
    /// A broadcast in which the receiving ranks may wait a long time (while rank 0 trains a
    /// one-tower model alone). Implementations should wait without spinning a core.
    func broadcastIdly<T>(_ values: inout [T], root: Int) {
        values.withUnsafeMutableBytes { broadcastIdly($0, root: root) }
    }

    /// Broadcasts an array of plain values (counts, flags) from `root`; the array must already
    /// have the same length on every rank.
    func broadcast<T>(_ values: inout [T], root: Int) {
        values.withUnsafeMutableBytes { broadcast($0, root: root) }
    }
}

/// The communicator of a process that holds every tower itself: each collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) {}
    public func broadcastIdly(_ bytes: UnsafeMutableRawBufferPointer, root: Int) {}
    public func allGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        if UnsafePointer(receive) != send { receive.update(from: send, count: count) }
    }
    public func allGather(_ send: UnsafePointer<Float>, counts: [Int], into receive: UnsafeMutablePointer<Float>) {
        allGather(send, count: counts[0], into: receive)
    }
    public func reduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        if UnsafePointer(receive) != send { receive.update(from: send, count: count) }
    }
    public func maximum(_ values: [Int32], idly: Bool) -> [Int32] { values }
    public func barrier() {}
    public func split(color: Int, key: Int) -> Communicator { SingleProcessCommunicator() }
    public func scatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        if counts[0] > 0, let source = send.baseAddress, let target = receive.baseAddress, source != UnsafeRawPointer(target) {
            target.copyMemory(from: source, byteCount: counts[0])
        }
    }
    public func gather(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        scatter(send, counts: counts, into: receive, root: root)  // one rank: both copy its bytes
    }
    public func allToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        if UnsafePointer(receive) != send { receive.update(from: send, count: count) }
    }
}
