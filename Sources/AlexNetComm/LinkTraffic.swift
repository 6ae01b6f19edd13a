import AlexNetCore

/// Bytes on the busiest host link in one training step, on paper: `ranks` ranks with one rank per
/// host at 2 ranks (the towers on two hosts) and one replica pair per host from 4 on, so that
/// only what crosses between replicas (and, at 2, between the towers) uses a link. Each
/// collective is counted as its blocks sent straight from the rank that holds them to the rank
/// that needs them, as `CommunicationVolume` counts them; links are full duplex, and the busiest
/// direction is the coordinator's host sending, which also hands out every batch.
public struct LinkTraffic: Sendable {
    /// The replicas' gradient sum (data: every parameter; hybrid: the convolutions').
    public var gradients = 0
    /// Activations and their gradients: at 2 ranks the towers' exchange; in the hybrid layout
    /// the gathers over every rank and their reduce-scatters.
    public var activations = 0
    /// The coordinator's records to the other hosts, and its stop flag.
    public var handOut = 0
    /// Metrics (data) or the batch's labels (hybrid).
    public var other = 0

    public var total: Int { gradients + activations + handOut + other }

    /// The busiest link's bytes per step for `plan` on `ranks` ranks (even, at least 2).
    public static func predicted(plan: NetworkPlan, ranks: Int, layout: ReplicaLayoutKind, batch: Int, record: Int,
                                 bucketFloats: Int = GradientBuckets.defaultCapacity) throws -> LinkTraffic {
        let replicas = ranks / plan.towers
        var link = LinkTraffic()
        guard plan.towers == 2, ranks >= 2, ranks % 2 == 0 else { return link }
        let volume = try CommunicationVolume.predicted(plan: plan, replicas: replicas, layout: layout, batch: batch, record: record,
                                                       bucketFloats: bucketFloats)
        guard replicas > 1 else {
            // One tower per host: each receives what the other sends, half of the pair's traffic.
            link.activations = (volume.activationAllGathers + volume.reduceScatters) / 2
            link.handOut = volume.batchHandOut
            return link
        }
        let share = batch / replicas, hybrid = ReplicaLayoutKind.effective(layout, replicas: replicas) == .hybrid
        // A host's two ranks each receive their twins' blocks, all from other hosts.
        link.gradients = volume.gradientAllReduce / replicas
        link.handOut = (replicas - 1) * 2 * share * record + (ranks - 2) * 4
        link.other = hybrid ? 2 * (batch - share) * 4 : 2 * (ranks - 2) * 16
        if hybrid { link.activations = try hybridActivations(plan: plan, replicas: replicas, batch: batch) }
        return link
    }

    /// The hybrid gathers' bytes into the busiest host: each of its two ranks receives every block
    /// held on other hosts, and (P - 2) of the P padded blocks of each reduce-scatter.
    static func hybridActivations(plan: NetworkPlan, replicas: Int, batch: Int) throws -> Int {
        let ranks = 2 * replicas, shares = Array(repeating: batch / replicas, count: replicas)
        var bytes = 0
        for stage in try plan.hybridStages(at: HybridPosition(tower: 0, replica: 0, replicas: replicas))
        where stage.op == .gatherImages || stage.acrossRanks {
            let blocks: HybridBlocks = stage.op == .gatherImages
                ? .images(towerFeatures: stage.rankChannels, replicas: replicas) : .slices(stage.rankChannels)
            let sizes = (0..<ranks).map { blocks.size($0, shares: shares) }, whole = sizes.reduce(0, +)
            let local = (0..<replicas).map { sizes[$0] + sizes[replicas + $0] }.min() ?? 0
            bytes += 2 * (whole - local) * 4
            if stage.op != .gather(.slice) { bytes += 2 * (ranks - 2) * (sizes.max() ?? 0) * 4 }
        }
        return bytes
    }
}
