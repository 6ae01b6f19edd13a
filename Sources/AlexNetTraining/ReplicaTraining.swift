import AlexNetCore
import Foundation

/// The training side of R replicas of the split model (`ReplicaLayout`): the batch hand-out,
/// the step (local share, gradients summed among twins, metrics summed on the world), and
/// what only replica 0 does (evaluate, write checkpoints and weights). With one replica every
/// method is the plain two-rank path, collective for collective.
final class ReplicaTraining {
    let layout: ReplicaLayout
    let network: Network
    private let coordinator: Coordinator?
    /// Images per replica: the global batch size divided by the replicas.
    let perReplica: Int
    private let reduction: OrderedAllReduce
    private let wholeBatch: BatchBroadcast
    private var control: [Int32] = [0]
    /// On the coordinator: the shares of replicas 1..<R, one after the other.
    private let staging: Buffer?
    private var stagingLabels: [Int32]
    /// Seconds the coordinator spent assembling batches (for `bench`).
    private(set) var assemblySeconds = 0.0

    init(layout: ReplicaLayout, network: Network, coordinator: Coordinator?, batchSize: Int) {
        self.layout = layout
        self.network = network
        self.coordinator = coordinator
        perReplica = batchSize / layout.replicas
        reduction = OrderedAllReduce(communicator: layout.twins)
        wholeBatch = BatchBroadcast(network: network, communicator: layout.pair)
        let others = coordinator != nil && layout.replicas > 1 ? (layout.replicas - 1) * perReplica : 0
        staging = others > 0 ? Buffer(count: others * network.plan.spec.input.size) : nil
        stagingLabels = Array(repeating: 0, count: others)
    }

    var replicas: Int { layout.replicas }

    /// Assembles training images `range` of the epoch's order (one global batch) on the
    /// coordinator and hands each replica its share; nil when every rank must stop. `next`, the
    /// next global batch if there is one, lets the coordinator prepare it in the background.
    func handOut(_ range: Range<Int>, next: Range<Int>? = nil) -> ReplicaShare? {
        let n = range.count
        guard replicas > 1 else {
            assemble(range, next: next)
            return wholeBatch.send(n) ? ReplicaShare(offset: 0, count: n, batch: n) : nil
        }
        control[0] = StopRequest.isRequested ? 1 : 0
        layout.world.broadcast(&control, root: 0)
        if control[0] != 0 {
            StopRequest.reachedBoundary()
            return nil
        }
        let imageBytes = network.plan.spec.input.size * 4
        let shares = (0..<replicas).map { ReplicaLayout.share($0, of: n, perReplica: perReplica) }
        let mine = shares[layout.replica]
        if layout.tower == 0 {
            // The coordinator assembles each share in turn (its own last, into its input) and
            // scatters the others to the replicas' tower-0 ranks.
            if coordinator != nil, let staging {
                // The order of assembly (replicas 1..<R, then 0), so each call can name the next for prefetching.
                let sequence = assemblyOrder(range)
                let following = next.flatMap { assemblyOrder($0).first }
                let imageSize = network.plan.spec.input.size
                var at = 0  // images staged so far
                for (k, share) in sequence.dropLast().enumerated() {
                    assemble(share, next: sequence[k + 1])
                    (staging.pointer + at * imageSize).update(from: network.input.pointer, count: share.count * imageSize)
                    for b in 0..<share.count { stagingLabels[at + b] = network.labels[b] }
                    at += share.count
                }
                assemble(sequence[sequence.count - 1], next: following)
            }
            let counts = shares.enumerated().map { $0.offset == 0 ? 0 : $0.element.count }
            layout.twins.scatter(UnsafeRawBufferPointer(start: staging?.pointer, count: staging == nil ? 0 : counts.reduce(0, +) * imageBytes),
                                 counts: counts.map { $0 * imageBytes },
                                 into: UnsafeMutableRawBufferPointer(start: network.input.pointer, count: mine.count * imageBytes), root: 0)
            stagingLabels.withUnsafeBytes { send in
                network.labels.withUnsafeMutableBytes { receive in
                    layout.twins.scatter(send, counts: counts.map { $0 * 4 }, into: receive, root: 0)
                }
            }
        }
        if !mine.isEmpty {
            layout.pair.broadcast(UnsafeMutableRawBufferPointer(start: network.input.pointer, count: mine.count * imageBytes), root: 0)
            network.labels.withUnsafeMutableBytes { layout.pair.broadcast(UnsafeMutableRawBufferPointer(rebasing: $0[0..<(mine.count * 4)]), root: 0) }
        }
        return ReplicaShare(offset: mine.lowerBound, count: mine.count, batch: n)
    }

    /// The shares of global batch `range` as ranges of the epoch's order, in the order the
    /// coordinator assembles them: replicas 1..<R (those with images), then replica 0.
    private func assemblyOrder(_ range: Range<Int>) -> [Range<Int>] {
        let shares = (0..<replicas).map { ReplicaLayout.share($0, of: range.count, perReplica: perReplica) }
        return (shares.dropFirst().filter { !$0.isEmpty } + [shares[0]]).map {
            (range.lowerBound + $0.lowerBound)..<(range.lowerBound + $0.upperBound)
        }
    }

    /// The coordinator fills its network's input with training images `range` of the epoch's
    /// order, and starts preparing `next` in the background.
    private func assemble(_ range: Range<Int>, next: Range<Int>?) {
        guard let coordinator else { return }
        let start = monotonicSeconds()
        coordinator.assembleTraining(range, into: network, next: next)
        assemblySeconds += monotonicSeconds() - start
    }

    /// Forward and backward on this replica's share, then (R > 1) the gradient of the mean loss
    /// over the global batch, summed among twins, and the global batch's mean loss and correct
    /// count. Every rank returns the same loss, so all agree when it is not finite.
    @discardableResult
    func step(_ share: ReplicaShare, step: Int, seed: UInt64, training: Bool = true) -> (loss: Double, correct: Int) {
        guard replicas > 1 else {
            return network.run(batch: share.count, context: StepContext(training: training, step: step, seed: seed))
        }
        var local = (loss: 0.0, correct: 0)
        if share.count > 0 {
            local = network.run(batch: share.count, context: StepContext(training: training, step: step, seed: seed,
                                                                         sampleOffset: share.offset, globalBatch: share.batch))
        }
        if training {
            // Replica r's gradient is of its mean loss; weighted by n_r / n they sum to the
            // gradient of the global batch's mean loss. One ordered sum over the whole arena.
            let weight = Float(Double(share.count) / Double(share.batch))
            let arena = network.arena
            if share.count == 0 {
                arena.gradients.zero()
            } else if weight != 1 {
                arena.scaleGradients(by: weight)
            }
            reduction.sum(arena.gradients.pointer, count: arena.count)
        }
        // Both towers of a pair hold the same logits: tower 0 speaks for its replica.
        let speaks = layout.tower == 0 && share.count > 0
        let total = layout.world.sumInRankOrder([speaks ? local.loss * Double(share.count) : 0, speaks ? Double(local.correct) : 0])
        return (total[0] / Double(share.batch), Int(total[1]))
    }

    /// Runs `evaluate` on replica 0 (its pair, with the pair's own hand-out) and shares the
    /// result with every rank, which the learning-rate schedule reads; nil when stopped.
    func evaluateOnFirstReplica(_ evaluate: (_ broadcast: (Int) -> Bool) -> Trainer.Evaluation?) throws -> Trainer.Evaluation? {
        guard replicas > 1 else { return evaluate(wholeBatch.send) }
        // The other replicas wait without spinning a core that replica 0 needs.
        let shared = try layout.world.agree(layout.replica == 0 ? .success(Finished(evaluation: evaluate(wholeBatch.send))) : nil,
                                            decider: 0, idly: true)
        if shared.evaluation == nil { StopRequest.reachedBoundary() }
        return shared.evaluation
    }

    /// An evaluation, or nil when it was stopped.
    private struct Finished: Codable {
        var evaluation: Trainer.Evaluation?
    }

    /// Runs `write` on replica 0's ranks only (twins hold the same weights) and ends every rank
    /// with the same error if it failed there. Returns `write`'s value on replica 0.
    func onFirstReplica<T>(_ write: () throws -> T) throws -> T? {
        guard replicas > 1 else { return try write() }
        let outcome: Result<T?, Error> = layout.replica == 0 ? Result { try write() } : .success(nil)
        try layout.world.agree(outcome.map { _ in () }, idly: true)
        return try outcome.get()
    }
}

extension Trainer {
    /// Why `ranks` ranks cannot run `plan` with these options, as one line naming the fix; nil
    /// when they can. Every rank reaches the same answer, so every rank stops.
    static func replicaProblem(plan: NetworkPlan, ranks: Int, options: TrainingOptions) -> String? {
        guard plan.towers > 1 else { return nil }
        let t = plan.towers
        guard ranks % t == 0 else {
            return "the \(plan.model.rawValue) model has \(t) towers, one per rank, but this run has \(ranks) rank(s): use `mpirun -np \(t)` (or -np \(t)R for R replicas), or --simulate to run both towers in one process"
        }
        let replicas = ranks / t
        if let asked = options.replicas, asked != replicas {
            return "--replicas \(asked) needs \(t * asked) ranks, but this run has \(ranks): under mpirun the replicas are the ranks / \(t), so use `mpirun -np \(t * asked)` or leave out --replicas"
        }
        guard options.batchSize % replicas == 0 else {
            let lower = options.batchSize / replicas * replicas
            return "the global batch of \(options.batchSize) images (--batch-size\(options.resume != nil ? ", from the checkpoint" : "")) does not split evenly over \(replicas) replicas: use a multiple of \(replicas), such as \(lower > 0 ? "\(lower) or " : "")\(lower + replicas)"
        }
        return nil
    }
}
