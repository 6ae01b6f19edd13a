import AlexNetCore
import CMPI

/// An MPI_Request of a non-blocking collective. `wait` is timed by the collective watchdog
/// once the towers have started, as the blocking collectives are.
final class MPIRequest: CollectiveRequest {
    private var request: MPI_Request?
    private var finished = false
    private let collective: CollectiveWatchdog.Collective
    private weak var owner: MPICommunicator?
    /// Arrays MPI reads until the request finishes (a scatter's counts and offsets): Swift
    /// arrays passed to C live only for the call, so they are copied here.
    private var arrays: [UnsafeMutablePointer<Int32>] = []

    init(_ collective: CollectiveWatchdog.Collective, owner: MPICommunicator, keeping arrays: [[Int32]] = [],
         start: (inout MPI_Request?, [UnsafeMutablePointer<Int32>]) -> Int32) {
        self.collective = collective
        self.owner = owner
        self.arrays = arrays.map { values in
            let copy = UnsafeMutablePointer<Int32>.allocate(capacity: max(values.count, 1))
            copy.initialize(from: values, count: values.count)
            return copy
        }
        _ = start(&request, self.arrays)
    }

    deinit {
        if !finished { wait() }  // MPI may still read the arrays
        arrays.forEach { $0.deallocate() }
    }

    func test() -> Bool {
        if !finished {
            var done: Int32 = 0
            MPI_Test(&request, &done, cmpi_status_ignore())
            finished = done != 0
        }
        return finished
    }

    var movesBeforeWait: Bool { true }

    func wait() {
        guard !finished else { return }
        if let owner { owner.timedOnceStarted(collective) { MPI_Wait(&request, cmpi_status_ignore()) } } else {
            MPI_Wait(&request, cmpi_status_ignore())
        }
        finished = true
    }
}

extension MPICommunicator {
    /// MPI_Ibcast. The hand-out of a batch is far below MPI's 32-bit count.
    public func startBroadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        precondition(bytes.count <= Int(Int32.max), "MPI counts are 32-bit")
        return MPIRequest(.broadcast, owner: self) { request, _ in
            MPI_Ibcast(bytes.baseAddress, Int32(bytes.count), cmpi_byte(), Int32(root), world, &request)
        }
    }

    /// MPI_Iscatterv, with the blocks one after the other.
    public func startScatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) -> CollectiveRequest {
        let (counts32, offsets) = Self.countsAndOffsets(counts)
        return MPIRequest(.scatter, owner: self, keeping: [counts32, offsets]) { request, arrays in
            MPI_Iscatterv(send.baseAddress, arrays[0], arrays[1], cmpi_byte(), receive.baseAddress, counts32[rank], cmpi_byte(),
                          Int32(root), world, &request)
        }
    }

    /// MPI_Ialltoall: a block of `count` floats to and from every rank.
    public func startAllToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count <= Int(Int32.max), "MPI counts are 32-bit")
        return MPIRequest(.allToAll, owner: self) { request, _ in
            MPI_Ialltoall(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world, &request)
        }
    }

    /// MPI_Iallgather.
    public func startAllGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) -> CollectiveRequest {
        precondition(count * size <= Int(Int32.max), "MPI counts are 32-bit")
        return MPIRequest(.allGather, owner: self) { request, _ in
            MPI_Iallgather(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world, &request)
        }
    }
}
