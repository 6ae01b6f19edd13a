/// How R replicas of the split model share the work (`--replica-layout`, docs/replicas.md).
public enum ReplicaLayoutKind: String, CaseIterable, Codable, Sendable {
    /// Every layer data-parallel: each replica holds the whole model, every gradient is summed
    /// among the twins.
    case data
    /// Krizhevsky's "one weird trick" (arXiv 1404.5997): the convolutions data-parallel as in
    /// `data`, the fully-connected layers model-parallel over all 2R ranks, fed the whole batch.
    case hybrid

    /// The layout a run of `replicas` replicas uses when none is asked for: hybrid from 2 on.
    /// With one replica both layouts are the same two-rank run.
    public static func effective(_ asked: ReplicaLayoutKind?, replicas: Int) -> ReplicaLayoutKind {
        replicas > 1 ? (asked ?? .hybrid) : .data
    }
}

/// Where one rank stands in the hybrid layout: tower `tower` of replica `replica` of `replicas`.
/// Its slice index among all ranks is `tower * replicas + replica`, so that the slices in index
/// order are the layer's units in order (tower 0's, then tower 1's).
public struct HybridPosition: Equatable, Sendable {
    public var tower: Int
    public var replica: Int
    public var replicas: Int
    public init(tower: Int, replica: Int, replicas: Int) {
        self.tower = tower
        self.replica = replica
        self.replicas = replicas
    }

    public var slice: Int { tower * replicas + replica }
}

extension NetworkPlan {
    /// Units of `layer` held by each slice, in slice order (`HybridPosition.slice`): tower t's
    /// units split over the R replicas as evenly as they go, the larger shares first
    /// (`evenShares`). fc8 with 5 classes and R = 3: tower 0's 3 as [1, 1, 1], tower 1's 2 as
    /// [1, 1, 0], so the slices are [1, 1, 1, 1, 1, 0]; a slice may hold no unit at all.
    public func sliceUnits(_ layer: LayerPlan, replicas: Int) -> [Int] {
        layer.towerOutputs.flatMap { Self.evenShares($0, over: replicas) }
    }

    /// Where `position`'s units of `layer` start within its tower's units.
    public func firstUnit(_ layer: LayerPlan, at position: HybridPosition) -> Int {
        Self.evenShares(layer.towerOutputs[position.tower], over: position.replicas)[..<position.replica].reduce(0, +)
    }

    /// The stages of one rank of the hybrid layout. Up to the flatten they are the data layout's
    /// (`stages(ranks:rank:)` for the rank's tower, on its replica's images). Then:
    /// `gatherImages` brings every rank's features of its images into `[features, whole batch]`;
    /// each fully-connected layer computes this rank's slice of its units on the whole batch,
    /// and a gather over all ranks joins the slices for the next layer (the logits last).
    public func hybridStages(at position: HybridPosition) throws -> [StagePlan] {
        guard towers > 1, position.replicas >= 1, (0..<towers).contains(position.tower),
              (0..<position.replicas).contains(position.replica) else {
            throw PlanError("the hybrid layout needs the split model and a place among its replicas")
        }
        let data = try stages(ranks: towers, rank: position.tower)
        guard let firstFC = layers.firstIndex(where: { $0.spec.kind == .fullyConnected }),
              layers[firstFC...].allSatisfy({ $0.spec.kind == .fullyConnected && $0.readsAllTowers && !$0.spec.lrn && !$0.spec.pool }),
              let gather = data.first(where: { $0.layerIndex == firstFC && $0.op == .gather(.sum) }) else {
            throw PlanError("the hybrid layout needs fully-connected layers last, each reading every tower; use --replica-layout data")
        }
        var plans = Array(data.prefix { $0.layerIndex < firstFC || $0.op == .flatten })
        var shape = plans.last!.output
        func add(_ layer: LayerPlan, _ op: StageOp, _ output: Shape, gathering: [Int] = [], across: Bool = false, first: Int = 0) {
            plans.append(StagePlan(layer: layer.spec.name, layerIndex: layer.index, op: op, input: shape, output: output,
                                   rankChannels: gathering, wholeBatch: true, acrossRanks: across, firstUnit: first))
            shape = output
        }
        // Every tower's features, tower by tower; each tower's of every replica's images.
        add(layers[firstFC], .gatherImages, gather.output, gathering: gather.rankChannels)
        var previous: [Int]? = nil
        for layer in layers[firstFC...] {
            if let parts = previous { add(layer, .gather(.sum), Shape(channels: parts.reduce(0, +)), gathering: parts, across: true) }
            let slices = sliceUnits(layer, replicas: position.replicas), first = firstUnit(layer, at: position)
            add(layer, .linear(groups: 1), Shape(channels: slices[position.slice]), first: first)
            if layer.spec.relu { add(layer, .relu, shape) }
            if layer.spec.dropout > 0 { add(layer, .dropout(rate: layer.spec.dropout, groups: 1), shape, first: first) }
            previous = slices
        }
        add(layers[layers.count - 1], .gather(.slice), Shape(channels: previous!.reduce(0, +)), gathering: previous!, across: true)
        return plans
    }
}

/// The blocks a gather over every rank of the hybrid layout joins (`HybridGather`): which
/// rows and columns of a `[rows, B]` activation each rank holds, as sizes for predictions.
public enum HybridBlocks: Equatable, Sendable {
    /// Features of each tower, `[F_0, F_1]`, over `replicas` replicas' images.
    case images(towerFeatures: [Int], replicas: Int)
    /// Units of each slice, in slice order.
    case slices([Int])

    /// Ranks that hold a block.
    public var ranks: Int {
        switch self {
        case let .images(f, r): f.count * r
        case let .slices(u): u.count
        }
    }

    /// Floats of rank k's block when the replicas hold `shares` images.
    public func size(_ k: Int, shares: [Int]) -> Int {
        switch self {
        case let .images(features, replicas): features[k / replicas] * shares[k % replicas]
        case let .slices(units): units[k] * shares.reduce(0, +)
        }
    }

    /// Floats of workspace `HybridGather` holds, as its `init` allocates them.
    public func workspaceFloats(backward: GatherBackward, maxShare: Int, replicas: Int) -> Int {
        let p = ranks
        switch self {
        case let .images(features, replicas):
            return features.reduce(0, +) * maxShare * replicas + (backward == .sum ? 2 * p * features.max()! * maxShare : 0)
        case let .slices(units):
            return backward == .sum ? 2 * p * units.max()! * maxShare * replicas : 0
        }
    }

    /// Bytes every rank receives from the others in one step, all ranks together, at `shares`:
    /// forward (the other ranks' blocks) and, for `.sum`, backward (the other ranks' padded blocks).
    public func trafficBytes(backward: GatherBackward, shares: [Int], training: Bool) -> (gather: Int, sum: Int) {
        let p = ranks, sizes = (0..<p).map { size($0, shares: shares) }, total = sizes.reduce(0, +)
        let gather = sizes.map { total - $0 }.reduce(0, +) * 4
        let sum = training && backward == .sum ? p * (p - 1) * (sizes.max() ?? 0) * 4 : 0
        return (gather, sum)
    }
}
