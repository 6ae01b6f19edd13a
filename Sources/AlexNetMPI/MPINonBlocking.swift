import AlexNetComm
import AlexNetCore
import CMPI

/// The MPI_Requests of one non-blocking collective (one, or a send and a receive), and what
/// is left to do once they are complete (a reduce-scatter's local addition). `wait` is timed by
/// the collective watchdog once the towers have started, as the blocking collectives are.
final class MPIRequest: CollectiveRequest {
    private let requests: UnsafeMutablePointer<MPI_Request?>
    private let requestCount: Int32
    private var finished = false
    private let collective: CollectiveWatchdog.Collective
    private weak var owner: MPICommunicator?
    /// Arrays MPI reads until the request finishes (a scatter's counts and offsets): Swift
    /// arrays passed to C live only for the call, so they are copied here.
    private var arrays: [UnsafeMutablePointer<Int32>] = []
    /// Run once, on the rank's thread that sees the requests complete.
    private var completion: (() -> Void)?

    init(_ collective: CollectiveWatchdog.Collective, owner: MPICommunicator, keeping arrays: [[Int32]] = [], requests count: Int = 1,
         completion: (() -> Void)? = nil, start: (UnsafeMutablePointer<MPI_Request?>, [UnsafeMutablePointer<Int32>]) -> Void) {
        self.collective = collective
        self.owner = owner
        self.completion = completion
        requestCount = Int32(count)
        requests = .allocate(capacity: count)
        requests.initialize(repeating: nil, count: count)
        self.arrays = arrays.map { values in
            let copy = UnsafeMutablePointer<Int32>.allocate(capacity: max(values.count, 1))
            copy.initialize(from: values, count: values.count)
            return copy
        }
        start(requests, self.arrays)
    }

    deinit {
        if !finished { wait() }  // MPI may still read the arrays
        arrays.forEach { $0.deallocate() }
        requests.deallocate()
    }

    func test() -> Bool {
        if !finished {
            var done: Int32 = 0
            MPI_Testall(requestCount, requests, &done, cmpi_statuses_ignore())
            if done != 0 { complete() }
        }
        return finished
    }

    var movesBeforeWait: Bool { true }

    func wait() {
        guard !finished else { return }
        if let owner { owner.timedOnceStarted(collective) { MPI_Waitall(requestCount, requests, cmpi_statuses_ignore()) } } else {
            MPI_Waitall(requestCount, requests, cmpi_statuses_ignore())
        }
        complete()
    }

    private func complete() {
        finished = true
        completion?()
        completion = nil
    }
}

extension MPICommunicator {
    /// MPI_Ibcast. The hand-out of a batch is far below MPI's 32-bit count.
    public func startBroadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        precondition(bytes.count <= Int(Int32.max), "MPI counts are 32-bit")
        return MPIRequest(.broadcast, owner: self) { request, _ in
            MPI_Ibcast(bytes.baseAddress, Int32(bytes.count), cmpi_byte(), Int32(root), world, request)
        }
    }

    /// MPI_Iscatterv, with the blocks one after the other.
    public func startScatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        let (counts32, offsets) = Self.countsAndOffsets(counts)
        return MPIRequest(.scatter, owner: self, keeping: [counts32, offsets]) { request, arrays in
            MPI_Iscatterv(send.baseAddress, arrays[0], arrays[1], cmpi_byte(), receive.baseAddress, counts32[rank], cmpi_byte(),
                          Int32(root), world, request)
        }
    }

    /// MPI_Ialltoall: a block of `count` floats to and from every rank. The gradient sum's, on a
    /// communicator of its own: marked started as the blocking one, so its waits are timed.
    public func startAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count <= Int(Int32.max), "MPI counts are 32-bit")
        towersStarted = true
        return MPIRequest(.allToAll, owner: self) { request, _ in
            MPI_Ialltoall(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world, request)
        }
    }

    /// MPI_Iallgather. Like the blocking one, it marks the towers as started, so that its wait
    /// (the activations' first exchange, in conv3's forward pass) is timed by the watchdog.
    public func startAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count * size <= Int(Int32.max), "MPI counts are 32-bit")
        towersStarted = true
        return MPIRequest(.allGather, owner: self) { request, _ in
            MPI_Iallgather(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world, request)
        }
    }

    /// For two ranks, as the blocking `reduceScatterSum`: the other rank's block sent and ours
    /// received (MPI_Isend and MPI_Irecv), then our own block added once both are complete, so
    /// each element is the same sum. More ranks: MPI_Ireduce_scatter_block.
    public func startReduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count * size <= Int(Int32.max), "MPI counts are 32-bit")
        towersStarted = true
        guard size == 2 else {
            return MPIRequest(.reduceScatter, owner: self) { request, _ in
                MPI_Ireduce_scatter_block(send, receive, Int32(count), cmpi_float(), cmpi_sum(), world, request)
            }
        }
        let other = 1 - rank, own = send + rank * count
        return MPIRequest(.reduceScatter, owner: self, requests: 2, completion: { Self.addOwnBlock(own, to: receive, count: count) }) { requests, _ in
            MPI_Irecv(receive, Int32(count), cmpi_float(), Int32(other), Self.reduceScatterTag, world, requests)
            MPI_Isend(send + other * count, Int32(count), cmpi_float(), Int32(other), Self.reduceScatterTag, world, requests + 1)
        }
    }
}
