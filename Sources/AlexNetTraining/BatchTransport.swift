import AlexNetCore

/// Moves each batch from the coordinator to the ranks that compute on it, preceded by the
/// coordinator's decision whether to stop (Ctrl-C or SIGTERM), so that every rank stops after
/// the same step.
///
/// With R replicas (`ReplicaLayout`) the coordinator holds the shares of replicas 1..<R one
/// after another in a staging batch and its own share in its batch: one scatter among the
/// tower-0 twins gives each replica's tower 0 its share, and a broadcast on each pair gives
/// it to the replica's other towers. With one replica the twins are a single rank, the scatter
/// moves nothing, and the batch travels by one broadcast, collective for collective the
/// two-rank run.
final class BatchTransport {
    /// Where the stop decision goes: every rank that takes part in the step.
    private let control: Communicator
    private let twins: Communicator
    private let pair: Communicator
    private var stop: [Int32] = [0]

    private init(control: Communicator, twins: Communicator, pair: Communicator) {
        self.control = control
        self.twins = twins
        self.pair = pair
    }

    /// Training: the decision over the world, the shares over the twins, then each pair.
    convenience init(layout: ReplicaLayout) { self.init(control: layout.world, twins: layout.twins, pair: layout.pair) }

    /// One pair on its own (testing on replica 0, `eval`): the decision and the batch over `pair`.
    convenience init(pair: Communicator) { self.init(control: pair, twins: SingleProcessCommunicator(), pair: pair) }

    /// Moves the coordinator's batch of `n` images to every rank of the pair; false when every
    /// rank must stop.
    func move(_ batch: Batch, count n: Int) -> Bool {
        move(batch, mine: n, staged: nil, shares: Array(repeating: 0, count: twins.size))
    }

    /// Moves one share to each replica: `shares[r]` images for replica r, where replica 0's
    /// (`shares[0]` is 0: nothing to scatter) is already in the coordinator's `batch` and the
    /// others are in `staged`, in replica order. Afterwards every rank's `batch` holds its
    /// replica's `mine` images. False when every rank must stop.
    func move(_ batch: Batch, mine: Int, staged: Batch?, shares: [Int]) -> Bool {
        guard goOn() else { return false }
        if pair.rank == 0 {
            let total = shares.reduce(0, +), pixelBytes = batch.shape.size * 4
            let none = UnsafeRawBufferPointer(start: nil, count: 0)
            twins.scatter(staged.map { UnsafeRawBufferPointer($0.pixelBytes(total)) } ?? none,
                          counts: shares.map { $0 * pixelBytes }, into: batch.pixelBytes(mine), root: 0)
            twins.scatter(staged.map { UnsafeRawBufferPointer($0.labelBytes(total)) } ?? none,
                          counts: shares.map { $0 * 4 }, into: batch.labelBytes(mine), root: 0)
        }
        batch.count = mine
        if mine > 0 {
            pair.broadcast(batch.pixelBytes(), root: 0)
            pair.broadcast(batch.labelBytes(), root: 0)
        }
        return true
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
