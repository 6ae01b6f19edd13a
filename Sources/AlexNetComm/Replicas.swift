import AlexNetCore
import Foundation

/// R replicas of a T-tower model on T*R ranks (`mpirun -np 2R`, or `--simulate --replicas R`).
///
/// World rank `w` holds tower `w % T` of replica `w / T`. Two splits of the world:
/// - `pair`: the towers of one replica (rank = tower). The model's cross-tower collectives
///   (all-gather, reduce-scatter) run here, exactly as in a one-replica run.
/// - `twins`: one tower in every replica (rank = replica). Weight gradients are summed here.
/// The world itself (rank 0 = coordinator) carries stop flags and metrics; the batch reaches each
/// replica through the tower-0 twins (a scatter from the coordinator) and then its pair.
///
/// With one replica nothing is split: `pair` is the world and `twins` a single rank, so the run
/// is the two-rank run of before, collective for collective.
public final class ReplicaLayout {
    public let world: Communicator
    public let pair: Communicator
    public let twins: Communicator
    /// Where a step's loss and correct count are summed over the replicas: the world, or with
    /// one replica a single rank, since every rank of the pair already holds them.
    public let metrics: Communicator
    public let towers: Int
    public let replicas: Int
    public let replica: Int
    public let tower: Int
    /// The layout asked for, as it applies to this many replicas (`ReplicaLayoutKind.effective`).
    public let kind: ReplicaLayoutKind
    /// With the hybrid layout: this rank's place and every rank ranked by slice.
    public let hybrid: HybridGroup?

    /// Collective over `world`, whose size must be a multiple of `towers`.
    public init(world: Communicator, towers: Int, kind asked: ReplicaLayoutKind? = .data) {
        precondition(towers >= 1 && world.size % towers == 0, "\(world.size) ranks do not hold whole replicas of \(towers) towers")
        self.world = world
        self.towers = towers
        replicas = world.size / towers
        replica = world.rank / towers
        tower = world.rank % towers
        kind = towers > 1 ? ReplicaLayoutKind.effective(asked, replicas: replicas) : .data
        if replicas == 1 {
            pair = world
            twins = SingleProcessCommunicator()
            metrics = SingleProcessCommunicator()
        } else {
            pair = world.split(color: replica, key: tower)
            twins = world.split(color: tower, key: replica)
            metrics = world
        }
        let position = HybridPosition(tower: tower, replica: replica, replicas: replicas)
        hybrid = kind == .hybrid ? HybridGroup(position: position, slices: world.split(color: 0, key: position.slice), world: world) : nil
    }

    /// Replica `r`'s images within an `n`-image global batch: `[r*s, (r+1)*s)` clipped to `n`,
    /// where `s` is the global batch size divided by the replicas. A partial last batch leaves
    /// the later replicas fewer images, or none.
    public static func share(_ r: Int, of n: Int, perReplica s: Int) -> Range<Int> {
        min(r * s, n)..<min((r + 1) * s, n)
    }
}

/// What a network of the hybrid layout needs to know of the ranks: its place, the communicator of
/// every rank ranked by slice (where the fully-connected slices meet), and the world (where the
/// batch's labels are gathered).
public struct HybridGroup {
    public let position: HybridPosition
    public let slices: Communicator
    public let world: Communicator
    public init(position: HybridPosition, slices: Communicator, world: Communicator) {
        self.position = position
        self.slices = slices
        self.world = world
    }
}

/// What one replica computes in a step: images `offset ..< offset + count` of a `batch`-image
/// global batch.
public struct ReplicaShare: Equatable, Sendable {
    public var offset: Int
    public var count: Int
    public var batch: Int
    public init(offset: Int, count: Int, batch: Int) {
        self.offset = offset
        self.count = count
        self.batch = batch
    }
}

/// A sum over ranks that gives the same bits on every rank and under every Communicator: each
/// rank owns one block of the vector (`ceil(count/size)` floats), receives every rank's copy of
/// it (all-to-all), adds them in rank order, and the sums are all-gathered. Per rank it receives
/// `2 (size-1) ceil(count/size)` floats, what a ring all-reduce moves; MPI_Allreduce is not used
/// because its order of additions is the library's choice.
///
/// Training sums the gradients with `BucketedGradientSum`, which does the same bucket by bucket
/// with non-blocking collectives during the backward pass; this one-shot form is its reference.
public final class OrderedAllReduce {
    public let communicator: Communicator
    /// Floats per block moved at a time, bounding the scratch memory to `3 * size * slice` floats.
    public let slice: Int
    private let send: Buffer, received: Buffer, gathered: Buffer, own: Buffer

    public init(communicator: Communicator, slice: Int = 1 << 20) {
        self.communicator = communicator
        self.slice = slice
        let p = communicator.size > 1 ? communicator.size : 0
        send = Buffer(count: p * slice)
        received = Buffer(count: p * slice)
        gathered = Buffer(count: p * slice)
        own = Buffer(count: p > 0 ? slice : 0)
    }

    /// Replaces `values` on every rank by the sum over ranks.
    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) {
        let p = communicator.size
        guard p > 1, count > 0 else { return }
        let block = (count + p - 1) / p
        for start in stride(from: 0, to: block, by: slice) {
            let width = min(slice, block - start)
            for j in 0..<p {
                let from = j * block + start, valid = max(0, min(width, count - from))
                if valid > 0 { (send.pointer + j * width).update(from: values + from, count: valid) }
                (send.pointer + j * width + valid).update(repeating: 0, count: width - valid)
            }
            communicator.allToAll(send.pointer, count: width, into: received.pointer)
            own.pointer.update(from: received.pointer, count: width)
            for r in 1..<p {
                let other = received.pointer + r * width
                for i in 0..<width { own.pointer[i] += other[i] }
            }
            communicator.allGather(own.pointer, count: width, into: gathered.pointer)
            for j in 0..<p {
                let to = j * block + start, valid = max(0, min(width, count - to))
                if valid > 0 { (values + to).update(from: gathered.pointer + j * width, count: valid) }
            }
        }
    }
}

public extension Communicator {
    /// Element-wise sum of every rank's `values`, added in rank order on every rank, so the
    /// result has the same bits over MPI and in-process (MPI_Allreduce's order is its own).
    func sumInRankOrder(_ values: [Double]) -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        let n = values.count
        var mine = [Float](repeating: 0, count: 2 * n), all = [Float](repeating: 0, count: 2 * n * size)
        mine.withUnsafeMutableBytes { m in values.withUnsafeBytes { m.copyMemory(from: $0) } }
        allGather(mine, count: 2 * n, into: &all)
        var doubles = [Double](repeating: 0, count: n * size)
        doubles.withUnsafeMutableBytes { d in all.withUnsafeBytes { d.copyMemory(from: $0) } }
        var total = Array(doubles[0..<n])
        for r in 1..<size { for i in 0..<n { total[i] += doubles[r * n + i] } }
        return total
    }
}

/// Bytes that cross between ranks in one step, all ranks together, by kind: what a rank
/// receives from the others, summed over ranks (a broadcast's root receives nothing).
public struct CommunicationVolume: Equatable, Sendable, CustomStringConvertible {
    /// Forward, into the cross layers and fc8's logits: each tower's half, to its pair.
    public var activationAllGathers = 0
    /// Backward, out of the cross layers: each tower's share of the other's input gradient.
    public var reduceScatters = 0
    /// Weight gradients among twins (R > 1), by `OrderedAllReduce`.
    public var gradientAllReduce = 0
    /// The stop flag to every rank, and each rank's share of the batch as records of stored
    /// bytes and draws (a broadcast over the pair; with replicas a scatter over the world).
    public var batchHandOut = 0
    /// The step's loss and correct count, summed over replicas (R > 1; training and inference).
    public var metrics = 0

    public init() {}

    public var total: Int { activationAllGathers + reduceScatters + gradientAllReduce + batchHandOut + metrics }

    public var description: String {
        "activation all-gathers \(activationAllGathers), reduce-scatters \(reduceScatters), gradient all-reduce \(gradientAllReduce), batch hand-out \(batchHandOut), metrics \(metrics) bytes"
    }

    /// The prediction from the model's table: `batch` images per global step, `replicas`
    /// replicas of the plan's towers, shares of `batch / replicas` (the last replica's share
    /// clipped when `batch` is not a multiple). Counts are those of `Trainer`'s step and of
    /// `bench`: the stop flag is an Int32, and each image travels as one `record` of that many
    /// bytes (its label, stored pixels and augmentation draws: `StoredImageFormat.recordBytes`).
    /// The gradients are summed in buckets of `bucketFloats`.
    public static func predicted(plan: NetworkPlan, replicas: Int, layout: ReplicaLayoutKind = .data, batch: Int, training: Bool = true,
                                 record: Int, bucketFloats: Int = GradientBuckets.defaultCapacity) throws -> CommunicationVolume {
        var v = CommunicationVolume()
        let t = plan.towers, ranks = t * replicas
        guard t > 1 else { return v }
        let hybrid = ReplicaLayoutKind.effective(layout, replicas: replicas) == .hybrid
        let perReplica = (batch + replicas - 1) / replicas
        let what = "the bytes moved in a step of \(batch) images"
        let shares = (0..<replicas).map { ReplicaLayout.share($0, of: batch, perReplica: perReplica).count }
        let towerStages = try (0..<t).map { tower in
            try hybrid ? plan.hybridStages(at: HybridPosition(tower: tower, replica: 0, replicas: replicas)) : plan.stages(ranks: t, rank: tower)
        }
        for stage in towerStages[0] {
            switch stage.op {
            case _ where stage.op == .gatherImages || stage.acrossRanks:
                // The hybrid layout's gathers over every rank (HybridGather).
                let blocks: HybridBlocks = stage.op == .gatherImages
                    ? .images(towerFeatures: stage.rankChannels, replicas: replicas) : .slices(stage.rankChannels)
                let mode: GatherBackward = stage.op == .gather(.slice) ? .slice : .sum
                let bytes = blocks.trafficBytes(backward: mode, shares: shares, training: training)
                v.activationAllGathers = try CheckedSize.sum(v.activationAllGathers, bytes.gather, what: what)
                v.reduceScatters = try CheckedSize.sum(v.reduceScatters, bytes.sum, what: what)
            case let .gather(mode):
                // Every rank of every pair receives the other towers' blocks, for every image once:
                // all ranks together, (t - 1) times the gathered whole, even or not.
                let gathered = try CheckedSize.product(t - 1, stage.output.size, batch, 4, what: what)
                v.activationAllGathers = try CheckedSize.sum(v.activationAllGathers, gathered, what: what)
                if training, mode == .sum { v.reduceScatters = try CheckedSize.sum(v.reduceScatters, gathered, what: what) }
            default:
                continue
            }
        }
        if training && replicas > 1 {
            // One ordered sum per bucket of each tower's gradient arena (GradientBuckets): every
            // rank receives 2 blocks of ceil(count/R) floats per bucket (the last block
            // padded with zeros). The towers' arenas may differ when the classes split unevenly.
            // The hybrid layout sums the convolutions' only.
            for stages in towerStages {
                let buckets = GradientBuckets(parameterCounts: stages.map { $0.wholeBatch ? 0 : $0.parameterCount }, capacity: bucketFloats)
                v.gradientAllReduce += buckets.trafficBytes(ranks: replicas)
            }
        }
        // Data: the loss and correct count summed over the world. Hybrid: the batch's labels
        // gathered over the world from each replica's tower 0 (every rank then has the loss).
        if replicas > 1 { v.metrics = hybrid ? (ranks - 1) * batch * 4 : ranks * (ranks - 1) * 2 * 8 }
        // Every rank but the coordinator receives its replica's share; the coordinator keeps replica 0's.
        let first = ReplicaLayout.share(0, of: batch, perReplica: perReplica).count
        let records = try CheckedSize.product(try CheckedSize.sum(try CheckedSize.product(t, batch, what: what), -first, what: what), record, what: what)
        v.batchHandOut = try CheckedSize.sum((ranks - 1) * 4, records, what: what)
        // `total` adds them all.
        _ = try [v.reduceScatters, v.gradientAllReduce, v.batchHandOut, v.metrics].reduce(v.activationAllGathers) { try CheckedSize.sum($0, $1, what: what) }
        return v
    }
}
