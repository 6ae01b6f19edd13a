import AlexNetComm
import AlexNetCore
import AlexNetData

/// Moves each batch from the coordinator to the ranks that compute on it, as stored bytes plus
/// each image's augmentation draws (`StoredBatch`), and makes every rank's float `Batch` from
/// them with the coordinator's own pipeline, so that the inputs have the same bits everywhere.
/// A hand-out is started without waiting (`start`) and finished later (`finish`), so that the
/// next batch can travel while the current step computes; `progress` lets it advance.
///
/// `finish` first shares the coordinator's decision whether to stop (Ctrl-C or SIGTERM), so that
/// every rank stops after the same step; a stopped hand-out is completed and dropped.
///
/// With R replicas (`ReplicaLayout`) the coordinator packs every replica's share and one
/// scatter over the world gives each rank its replica's share (the towers of a replica get the
/// same records). With one replica the batch travels by one broadcast over the pair.
public final class BatchTransport {
    /// Where the stop decision goes: every rank that takes part in the step.
    private let control: Communicator
    /// Where the records go: the pair (broadcast), or with replicas the world (scatter).
    private let handOut: Communicator
    /// Ranks per replica, when scattering; nil when broadcasting.
    private let towers: Int?
    public let pipeline: InputPipeline
    /// This rank's records once a hand-out has finished (on the coordinator when broadcasting,
    /// also where it packs).
    public let received: StoredBatch
    /// On the coordinator, with replicas: every rank's block, in world-rank order.
    private let outgoing: StoredBatch?
    private var pending: (request: CollectiveRequest, count: Int)?
    private var stop: [Int32] = [0]
    /// Whether this rank receives records at all: not so on the other replicas when the hybrid
    /// layout tests on replica 0's images.
    private var receives = true
    /// Seconds spent making float batches from records (for `bench`).
    public private(set) var expansionSeconds = 0.0

    private init(control: Communicator, handOut: Communicator, towers: Int?, pipeline: InputPipeline, format: StoredImageFormat,
                 capacity: Int, outgoing: Int) {
        self.control = control
        self.handOut = handOut
        self.towers = towers
        self.pipeline = pipeline
        received = StoredBatch(format: format, capacity: capacity)
        self.outgoing = outgoing > 0 ? StoredBatch(format: format, capacity: outgoing) : nil
    }

    /// Training: the decision over the world; the records over the pair, or scattered over the world.
    public convenience init(layout: ReplicaLayout, pipeline: InputPipeline, format: StoredImageFormat, perReplica: Int) {
        let scatters = layout.replicas > 1
        self.init(control: layout.world, handOut: scatters ? layout.world : layout.pair, towers: scatters ? layout.towers : nil,
                  pipeline: pipeline, format: format, capacity: perReplica,
                  outgoing: scatters && layout.world.rank == 0 ? layout.world.size * perReplica : 0)
    }

    /// One pair on its own (testing on replica 0, `eval`): the decision and the records over `pair`.
    public convenience init(pair: Communicator, pipeline: InputPipeline, format: StoredImageFormat, capacity: Int) {
        self.init(control: pair, handOut: pair, towers: nil, pipeline: pipeline, format: format, capacity: capacity, outgoing: 0)
    }

    /// The hybrid layout's testing: the decision over the world, every rank of which computes,
    /// and the test images to replica 0's pair only (the other replicas hold none).
    convenience init(testing layout: ReplicaLayout, pipeline: InputPipeline, format: StoredImageFormat, capacity: Int) {
        self.init(control: layout.world, handOut: layout.pair, towers: nil, pipeline: pipeline, format: format,
                  capacity: capacity, outgoing: 0)
        receives = layout.replica == 0
    }

    deinit { pending?.request.wait() }  // every rank drops the same hand-out

    /// Where the coordinator packs replica `r`'s share of `shares[r]` images.
    public func room(replica r: Int, shares: [Int]) -> StoredBatch {
        guard let outgoing, let towers else { return received }
        return StoredBatch(viewing: outgoing, from: shares[..<r].reduce(0, +) * towers, capacity: shares[r])
    }

    /// Starts moving the packed shares, `shares[r]` images for replica r (one share when
    /// broadcasting). Every rank calls it, with the same `shares`.
    public func start(shares: [Int]) {
        precondition(pending == nil, "a hand-out is already under way")
        let record = received.format.recordBytes
        guard let towers else {
            pending = (handOut.startBroadcast(received.bytes(shares[0]), root: 0), shares[0])
            return
        }
        let counts = (0..<handOut.size).map { shares[$0 / towers] * record }
        if outgoing != nil {  // the other towers of each replica get a copy of its tower 0's block
            for r in shares.indices where shares[r] > 0 {
                let first = room(replica: r, shares: shares).storage, block = counts[r * towers]
                for t in 1..<towers { (first + t * block).copyMemory(from: first, byteCount: block) }
            }
        }
        let mine = shares[handOut.rank / towers]
        let send = outgoing.map { UnsafeRawBufferPointer($0.bytes(towers * shares.reduce(0, +))) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        pending = (handOut.startScatter(send, counts: counts, into: received.bytes(mine), root: 0), mine)
    }

    /// Lets the hand-out under way advance: called between the stages of a step.
    public func progress() { _ = pending?.request.test() }

    /// Shares the coordinator's decision whether to go on, finishes the hand-out under way and
    /// fills `batch` with this rank's images. False when every rank must stop.
    public func finish(into batch: Batch) -> Bool {
        let goOn = self.goOn()
        guard let (request, count) = pending else { preconditionFailure("no hand-out under way") }
        request.wait()
        pending = nil
        guard goOn else { return false }
        let begin = monotonicSeconds()
        if count > 0 { pipeline.expand(received, count: count, into: batch) } else { batch.count = 0 }
        expansionSeconds += monotonicSeconds() - begin
        return true
    }

    /// Test images `range` through test view `view`: packed by the coordinator, moved, and
    /// made into `batch` on every rank of the pair. False when every rank must stop.
    public func moveTest(_ range: Range<Int>, view: Int, coordinator: Coordinator?, into batch: Batch) -> Bool {
        guard receives else {
            batch.count = 0
            return goOn()
        }
        coordinator?.packTest(range, view: view, into: received)
        start(shares: [range.count])
        return finish(into: batch)
    }

    /// Shares the coordinator's decision whether to go on.
    private func goOn() -> Bool {
        stop[0] = StopRequest.isRequested ? 1 : 0
        control.broadcast(&stop, root: 0)
        if stop[0] != 0 {
            StopRequest.reachedBoundary()
            return false
        }
        return true
    }
}
