import AlexNetComm
import AlexNetCore
import CMPI
import Foundation

/// The Communicator over Open MPI's MPI_COMM_WORLD (one tower per process), or over a
/// communicator split from it (`split`: the ranks of one replica, or a tower's twins).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    /// The MPI communicator this object speaks through: MPI_COMM_WORLD unless made by `split`.
    let world: MPI_Comm
    /// Ends the job when a collective hangs (a host or the network gone); nil without a limit.
    /// Communicators split from this one share it.
    let watchdog: CollectiveWatchdog?
    /// Whether the towers have exchanged activations yet: until then a broadcast may wait for as
    /// long as rank 0 takes to load and prepare the data, so only later ones are timed.
    var towersStarted = false

    /// Seconds a collective may take before the job is ended, unless the user says otherwise.
    public static let defaultCollectiveTimeout = 60.0

    /// Whether this process was started by mpirun (or another Open MPI launcher).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// This process's rank as the launcher set it, readable before MPI_Init (0 when not launched).
    public static var launcherRank: Int {
        let env = ProcessInfo.processInfo.environment
        return Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? env["PMI_RANK"] ?? "0") ?? 0
    }

    /// Initialises MPI; call once per process.
    ///
    /// Unless the user chose otherwise, shared-memory transfers copy through a buffer instead of
    /// the kernel's cross-memory attach: measured here, that cut a paper-preset run's system time
    /// from 15 s to 4 s and the ranks' waiting from 34 to 6 ms per step, and it avoids CMA's
    /// ptrace failures in containers.
    ///
    /// `collectiveTimeout` (seconds; 0 for none) bounds how long an all-gather, reduce-scatter,
    /// max-reduce, barrier, or a broadcast once the towers have started, may take: past it, the job
    /// is ended with one error line (CollectiveWatchdog). Broadcasts that wait idly (while rank 0
    /// trains a one-tower model alone) are never timed.
    ///
    /// `threadMultiple` asks for MPI_THREAD_MULTIPLE, which a progress thread of the gradient sum
    /// (`BucketedGradientSum`) needs; it stops with one line if this MPI cannot give it.
    public init(collectiveTimeout: Double = MPICommunicator.defaultCollectiveTimeout, threadMultiple: Bool = false) {
        setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0)
        if threadMultiple {
            var provided: Int32 = 0
            MPI_Init_thread(nil, nil, cmpi_thread_multiple(), &provided)
            if provided < cmpi_thread_multiple() {
                Console.writeError("error: this MPI library does not provide MPI_THREAD_MULTIPLE, which --progress thread needs: use --progress stages\n")
                MPI_Abort(cmpi_comm_world(), 1)
            }
        } else {
            MPI_Init(nil, nil)
        }
        world = cmpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r)
        size = Int(s)
        watchdog = collectiveTimeout > 0 && size > 1
            ? CollectiveWatchdog(timeout: collectiveTimeout, rank: rank,
                                 launcherDetection: CollectiveWatchdog.launcherDetection(environment: ProcessInfo.processInfo.environment)) { code in
                Console.flushOutput()
                MPI_Abort(cmpi_comm_world(), code)
            }
            : nil
    }

    /// The run whose last checkpoint the watchdog's error message names.
    public func setRunDirectory(_ path: String?) { watchdog?.setRunDirectory(path) }

    /// Shuts MPI down; call once, after the last collective.
    public func finalize() { MPI_Finalize() }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) {
        guard let watchdog, towersStarted else { return broadcastUntimed(bytes, root: root) }
        watchdog.time(.broadcast) { broadcastUntimed(bytes, root: root) }
    }

    private func broadcastUntimed(_ bytes: UnsafeMutableRawBufferPointer, root: Int) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {  // MPI counts are 32-bit
            let count = min(bytes.count - offset, 1 << 30)
            MPI_Bcast(base + offset, Int32(count), cmpi_byte(), Int32(root), world)
            offset += count
        }
    }

    /// A non-blocking broadcast polled every millisecond: Open MPI's blocking collectives
    /// busy-poll, which would take a core from the rank that is training alone.
    public func broadcastIdly(_ bytes: UnsafeMutableRawBufferPointer, root: Int) {
        guard let base = bytes.baseAddress else { return }
        var request: MPI_Request? = nil
        MPI_Ibcast(base, Int32(bytes.count), cmpi_byte(), Int32(root), world, &request)
        waitIdly(&request)
    }

    public func allGather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        towersStarted = true
        timed(.allGather) {
            MPI_Allgather(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world)
        }
    }

    /// MPI_Allgatherv, with displacements that put the blocks one after the other.
    public func allGather(_ send: UnsafePointer<Float>, counts: [Int], into receive: UnsafeMutablePointer<Float>) {
        precondition(counts.reduce(0, +) <= Int(Int32.max), "MPI counts are 32-bit")
        towersStarted = true
        let counts32 = counts.map { Int32($0) }
        let displacements = counts32.indices.map { counts32[..<$0].reduce(0, +) }
        timed(.allGather) {
            MPI_Allgatherv(send, counts32[rank], cmpi_float(), receive, counts32, displacements, cmpi_float(), world)
        }
    }

    /// For two ranks, one Sendrecv plus a local add: 5x faster here than MPI_Reduce_scatter_block
    /// (docs/architecture.md, "What crosses between ranks"), and the same bits, since a+b == b+a.
    public func reduceScatterSum(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        towersStarted = true
        guard size == 2 else {
            timed(.reduceScatter) { MPI_Reduce_scatter_block(send, receive, Int32(count), cmpi_float(), cmpi_sum(), world) }
            return
        }
        let other = 1 - rank
        timed(.reduceScatter) {
            MPI_Sendrecv(send + other * count, Int32(count), cmpi_float(), Int32(other), Self.reduceScatterTag,
                         receive, Int32(count), cmpi_float(), Int32(other), Self.reduceScatterTag, world, cmpi_status_ignore())
        }
        Self.addOwnBlock(send + rank * count, to: receive, count: count)
    }

    /// The tag of the two-rank reduce-scatter's messages, blocking or not.
    static let reduceScatterTag: Int32 = 7

    /// The two-rank reduce-scatter's last step: `receive` holds the other rank's block.
    static func addOwnBlock(_ own: UnsafePointer<Float>, to receive: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { receive[i] += own[i] }
    }

    /// MPI_Allreduce(MAX) on 32-bit ints; with `idly`, MPI_Iallreduce polled every
    /// millisecond and never timed, as `broadcastIdly`.
    public func maximum(_ values: [Int32], idly: Bool) -> [Int32] {
        var result = [Int32](repeating: 0, count: values.count)
        guard idly else {
            timed(.maximum) { MPI_Allreduce(values, &result, Int32(values.count), cmpi_int(), cmpi_max(), world) }
            return result
        }
        var request: MPI_Request? = nil
        values.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer { receive in
                MPI_Iallreduce(send.baseAddress, receive.baseAddress, Int32(values.count), cmpi_int(), cmpi_max(), world, &request)
                waitIdly(&request)
            }
        }
        return result
    }

    /// Polls `request` every millisecond until it completes: Open MPI's blocking calls
    /// busy-poll, which would take a core from a rank that is working alone.
    private func waitIdly(_ request: inout MPI_Request?) {
        var done: Int32 = 0
        while true {
            MPI_Test(&request, &done, cmpi_status_ignore())
            if done != 0 { return }
            usleep(1000)
        }
    }

    public func barrier() { timed(.barrier) { MPI_Barrier(world) } }

    @inline(__always) @discardableResult
    private func timed<T>(_ collective: CollectiveWatchdog.Collective, _ body: () -> T) -> T {
        guard let watchdog else { return body() }
        return watchdog.time(collective, body)
    }

    // MARK: replicas (split, scatter, all-to-all)

    private init(splitFrom parent: MPI_Comm, color: Int, key: Int, watchdog: CollectiveWatchdog?) {
        var comm: MPI_Comm? = nil
        MPI_Comm_split(parent, Int32(color), Int32(key), &comm)
        world = comm!
        self.watchdog = watchdog
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r)
        size = Int(s)
    }

    /// MPI_Comm_split. The new communicator lives until MPI_Finalize.
    public func split(color: Int, key: Int) -> Communicator {
        MPICommunicator(splitFrom: world, color: color, key: key, watchdog: watchdog)
    }

    public func scatter(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        let (counts32, offsets) = Self.countsAndOffsets(counts)
        // Like a broadcast: timed once the towers have started.
        timedOnceStarted(.scatter) {
            MPI_Scatterv(send.baseAddress, counts32, offsets, cmpi_byte(), receive.baseAddress, counts32[self.rank], cmpi_byte(),
                         Int32(root), self.world)
        }
    }

    public func gather(_ send: UnsafeRawBufferPointer, counts: [Int], into receive: UnsafeMutableRawBufferPointer, root: Int) {
        let (counts32, offsets) = Self.countsAndOffsets(counts)
        timedOnceStarted(.gather) {
            MPI_Gatherv(send.baseAddress, counts32[self.rank], cmpi_byte(), receive.baseAddress, counts32, offsets, cmpi_byte(),
                        Int32(root), self.world)
        }
    }

    /// MPI's Int32 counts and the offsets of a scatter's or gather's blocks.
    static func countsAndOffsets(_ counts: [Int]) -> (counts: [Int32], offsets: [Int32]) {
        let counts32 = counts.map { Int32($0) }
        var offsets: [Int32] = [], offset: Int32 = 0
        for c in counts32 { offsets.append(offset); offset += c }
        return (counts32, offsets)
    }

    /// A collective that may wait long before the towers start (rank 0 preparing data) is
    /// timed only after their first exchange.
    func timedOnceStarted(_ collective: CollectiveWatchdog.Collective, _ body: () -> Int32) {
        guard let watchdog, towersStarted else { _ = body(); return }
        _ = watchdog.time(collective, body)
    }

    public func allToAll(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        towersStarted = true
        timed(.allToAll) { MPI_Alltoall(send, Int32(count), cmpi_float(), receive, Int32(count), cmpi_float(), world) }
    }
}
