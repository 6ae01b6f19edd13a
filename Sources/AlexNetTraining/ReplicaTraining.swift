import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import Foundation

/// The training side of R replicas of the split model (`ReplicaLayout`): the batch hand-out
/// (started one step ahead, `BatchTransport`), the step (local share, gradients summed among
/// twins, metrics summed over the replicas), and what only replica 0 does (evaluate, write
/// checkpoints and weights). One replica is the case R = 1 of the same code: its twins are a
/// single rank, so the gradient sum moves nothing, and the hand-out is one broadcast over the pair.
public final class ReplicaTraining {
    public let layout: ReplicaLayout
    public let network: Network
    private let coordinator: Coordinator?
    /// Images per replica: the global batch size divided by the replicas.
    public let perReplica: Int
    /// The gradient sum among twins, bucket by bucket during the backward pass.
    public let reduction: BucketedGradientSum
    /// This rank's share of each training batch, and of each test batch on replica 0.
    public let batch: Batch
    private let transport: BatchTransport
    /// On replica 0's pair: moves test batches (replica 0 tests alone).
    public let testTransport: BatchTransport
    /// The global batch whose hand-out is under way, on every rank.
    private var started: Range<Int>?
    /// Seconds the coordinator spent packing records (for `bench`).
    private var packingSeconds = 0.0

    /// A collective over the world: the coordinator's input pipeline reaches every rank.
    /// `overlap` says how the gradient sum overlaps the backward pass (bucket size, progress).
    public init(layout: ReplicaLayout, network: Network, coordinator: Coordinator?, batchSize: Int, data: DataLayout,
         overlap: GradientOverlap = GradientOverlap()) {
        self.layout = layout
        self.network = network
        self.coordinator = coordinator
        perReplica = batchSize / layout.replicas
        // The hybrid layout sums only the convolutions' gradients: each fully-connected slice
        // already has the gradient of the whole batch, and no twin holds the same units.
        let summed = network.stagePlans.map { stage in
            var s = stage
            if s.wholeBatch { s.op = .flatten }
            return s
        }
        reduction = BucketedGradientSum(twins: layout.twins, buckets: overlap.buckets(summed),
                                        progressInterval: overlap.progress == .thread ? overlap.progressInterval : nil)
        network.afterStageBackward = { [weak reduction] in reduction?.stageFinished($0) }
        batch = Batch(shape: network.plan.spec.input, capacity: network.maxBatch)
        let input = network.plan.spec.input, format = StoredImageFormat(layout: data)
        let pipeline = InputPipeline.shared(coordinator?.pipeline, layout: data, input: input, over: layout.world)
        // A share never holds more than the network's batch (at most the training images there are), so
        // the records are sized by that, not by a --batch-size far above the data.
        transport = BatchTransport(layout: layout, pipeline: pipeline, format: format, perReplica: min(perReplica, network.maxBatch))
        testTransport = layout.hybrid == nil
            ? BatchTransport(pair: layout.pair, pipeline: pipeline, format: format, capacity: network.maxBatch)
            : BatchTransport(testing: layout, pipeline: pipeline, format: format, capacity: network.maxBatch)
        network.betweenStages = { [transport] in transport.progress() }
    }

    public var replicas: Int { layout.replicas }

    /// Seconds spent packing training batches (the coordinator) and making float batches from
    /// them (every rank): the input's cost on the critical path, without the wait (for `bench`).
    public var assemblySeconds: Double { packingSeconds + transport.expansionSeconds }

    /// Hands each replica its share of global batch `range` (training images of the epoch's
    /// order); nil when every rank must stop. The hand-out of `next`, the next global batch if
    /// there is one, starts at once and travels while this step computes; `following`, the one
    /// after, lets the coordinator pack it in the background meanwhile.
    public func handOut(_ range: Range<Int>, next: Range<Int>? = nil, following: Range<Int>? = nil) -> ReplicaShare? {
        if started == nil { startHandOut(range, prefetch: next) }
        precondition(started == range, "batch \(range) asked for while \(started!) was handed out")
        started = nil
        guard transport.finish(into: batch) else { return nil }
        if let next { startHandOut(next, prefetch: following) }
        let mine = ReplicaLayout.share(layout.replica, of: range.count, perReplica: perReplica)
        return ReplicaShare(offset: mine.lowerBound, count: mine.count, batch: range.count)
    }

    /// Starts the hand-out of global batch `range` on every rank; the coordinator first packs
    /// each share in turn (those of replicas 1..<R, then its own), each call naming the next
    /// share so that the background can pack it, the last naming `prefetch`'s first.
    private func startHandOut(_ range: Range<Int>, prefetch: Range<Int>?) {
        let shares = (0..<replicas).map { ReplicaLayout.share($0, of: range.count, perReplica: perReplica).count }
        if let coordinator {
            let begin = monotonicSeconds()
            let sequence = assemblyOrder(range)
            let following = prefetch.flatMap { assemblyOrder($0).first }
            for (k, share) in sequence.enumerated() {
                let r = (share.lowerBound - range.lowerBound) / max(perReplica, 1)
                coordinator.packTraining(share, into: transport.room(replica: r, shares: shares),
                                         next: k + 1 < sequence.count ? sequence[k + 1] : following)
            }
            packingSeconds += monotonicSeconds() - begin
        }
        transport.start(shares: shares)
        started = range
    }

    /// The shares of global batch `range` as ranges of the epoch's order, in the order the
    /// coordinator packs them: replicas 1..<R (those with images), then replica 0.
    private func assemblyOrder(_ range: Range<Int>) -> [Range<Int>] {
        let shares = (0..<replicas).map { ReplicaLayout.share($0, of: range.count, perReplica: perReplica) }
        return (shares.dropFirst().filter { !$0.isEmpty } + [shares[0]]).map {
            (range.lowerBound + $0.lowerBound)..<(range.lowerBound + $0.upperBound)
        }
    }

    /// Forward and backward on this replica's share, then the gradient of the mean loss over
    /// the global batch, summed among twins, and the global batch's mean loss and correct
    /// count. Every rank returns the same loss, so all agree when it is not finite.
    @discardableResult
    public func step(_ share: ReplicaShare, step: Int, seed: UInt64, training: Bool = true) -> (loss: Double, correct: Int) {
        var local = (loss: 0.0, correct: 0)
        if layout.hybrid != nil { return hybridStep(share, step: step, seed: seed, training: training) }
        // Replica r's gradient is of its mean loss; weighted by n_r / n they sum to the gradient
        // of the global batch's mean loss. The buckets are weighted and summed among twins as
        // the backward pass finishes them (with one replica nothing happens).
        if training { reduction.begin(network.arena.gradients.pointer, weight: Float(Double(share.count) / Double(share.batch))) }
        if share.count > 0 {
            local = network.run(batch, context: StepContext(training: training, step: step, seed: seed,
                                                            sampleOffset: share.offset, globalBatch: share.batch))
        } else if training {
            network.arena.gradients.zero()  // no images: this replica adds nothing
        }
        if training { reduction.finish() }
        return globalMetrics(local, share: share)
    }

    /// The hybrid layout's step: every rank takes part, with or without images of its own, since
    /// its fully-connected slice computes on the whole batch. The loss is the whole batch's mean
    /// on every rank (its gradient scaled by 1/n), so each replica's convolution gradients are
    /// its part of the whole batch's: summed among the twins unweighted.
    private func hybridStep(_ share: ReplicaShare, step: Int, seed: UInt64, training: Bool) -> (loss: Double, correct: Int) {
        if training { reduction.begin(network.arena.gradients.pointer, weight: 1) }
        let shares = (0..<replicas).map { ReplicaLayout.share($0, of: share.batch, perReplica: perReplica).count }
        let result = network.run(batch, context: StepContext(training: training, step: step, seed: seed, sampleOffset: share.offset,
                                                             globalBatch: share.batch, replicaShares: shares))
        if training { reduction.finish() }
        return result
    }

    /// The tower's tensors (values, and momenta after each when `momentum`) on replica 0, nil on
    /// the others: a collective over the twins. In the hybrid layout each fully-connected
    /// tensor's rows come from every twin in replica order, the order of the tower's units, so
    /// the files are those of the data layout.
    func towerTensors(momentum: Bool) -> [SafeTensors.Tensor]? {
        var tensors: [SafeTensors.Tensor] = []
        for p in network.parameters {
            for (suffix, buffer) in [("", p.value)] + (momentum ? [(".momentum", p.momentum)] : []) {
                guard let rows = network.towerRows(of: p) else {
                    tensors.append(SafeTensors.Tensor(name: p.name + suffix, shape: p.shape, values: buffer.array))
                    continue
                }
                let rowLength = p.shape.dropFirst().reduce(1, *)
                let counts = NetworkPlan.evenShares(rows.of, over: replicas).map { $0 * rowLength * 4 }
                var whole = [Float](repeating: 0, count: layout.replica == 0 ? rows.of * rowLength : 0)
                whole.withUnsafeMutableBytes { target in
                    layout.twins.gather(UnsafeRawBufferPointer(start: buffer.pointer, count: p.count * 4), counts: counts,
                                        into: target, root: 0)
                }
                tensors.append(SafeTensors.Tensor(name: p.name + suffix, shape: [rows.of] + p.shape.dropFirst(), values: whole))
            }
        }
        return layout.replica == 0 ? tensors : nil
    }

    /// The global batch's mean loss and correct count, summed over the replicas in rank order.
    /// Both towers of a pair hold the same logits: tower 0 speaks for its replica. With one
    /// replica every rank already holds them.
    private func globalMetrics(_ local: (loss: Double, correct: Int), share: ReplicaShare) -> (loss: Double, correct: Int) {
        guard layout.metrics.size > 1 else { return local }
        let speaks = layout.tower == 0 && share.count > 0
        let total = layout.metrics.sumInRankOrder([speaks ? local.loss * Double(share.count) : 0, speaks ? Double(local.correct) : 0])
        return (total[0] / Double(share.batch), Int(total[1]))
    }

    /// Runs `evaluate` on replica 0 (its pair, with the pair's own transport) and shares the
    /// result with every rank, which the learning-rate schedule reads; nil when stopped.
    public func evaluateOnFirstReplica(_ evaluate: (_ transport: BatchTransport) -> Trainer.Evaluation?) throws -> Trainer.Evaluation? {
        // The other replicas wait without spinning a core that replica 0 needs.
        // In the hybrid layout every rank evaluates: the fully-connected slices are everywhere,
        // and replica 0's pair receives the test images.
        let result = layout.replica == 0 || layout.hybrid != nil ? evaluate(testTransport) : nil
        let evaluation = layout.replica == 0 ? Finished(evaluation: result) : nil
        pairMeetsAfterItsWork()
        let shared = try layout.world.agree(evaluation.map { .success($0) }, decider: 0, idly: true)
        if shared.evaluation == nil { StopRequest.reachedBoundary() }
        return shared.evaluation
    }

    /// An evaluation, or nil when it was stopped.
    private struct Finished: Codable {
        var evaluation: Trainer.Evaluation?
    }

    /// Runs `write` on replica 0's ranks only (twins hold the same weights) and ends every rank
    /// with the same error if it failed there. Returns `write`'s value on replica 0.
    public func onFirstReplica<T>(_ write: () throws -> T) throws -> T? {
        let outcome: Result<T?, Error> = layout.replica == 0 ? Result { try write() } : .success(nil)
        pairMeetsAfterItsWork()
        try layout.world.agree(outcome.map { _ in () }, idly: true)
        return try outcome.get()
    }

    /// Replica 0's two ranks meet in a timed barrier once their shared work is done. The world's
    /// agreement that follows waits idly, and idle waits are not timed by the collective
    /// watchdog (the other replicas may wait there a whole test pass), so without this a rank of
    /// replica 0 that stopped responding (SIGSTOP, a hung host) would leave its partner waiting
    /// for ever instead of ending the job.
    private func pairMeetsAfterItsWork() {
        if layout.replica == 0 { layout.pair.barrier() }
    }
}
