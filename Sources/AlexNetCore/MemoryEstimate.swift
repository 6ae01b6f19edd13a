import Foundation

/// The memory one rank of a network holds for a batch of `batch` images, computed from the plan
/// alone, stage by stage, from the buffers each layer says it allocates (`allocations`), and the
/// outputs, gradients and parameter arena the network allocates: every buffer is sized once for
/// the largest batch, so this is also the rank's steady state.
///
/// Bytes are Doubles so that an absurd batch (10^8 images of the paper preset) gives an absurd
/// number instead of an overflow trap; the counts themselves are exact below 2^53.
/// `summary --batch-size` prints it, and memory admission (before anything is allocated)
/// compares it with what the machine can give: one source for both.
public struct MemoryEstimate: Sendable {
    /// One stage's memory on this rank.
    public struct StageMemory: Sendable {
        public var layer: String
        public var op: String
        /// The stage's output and the gradient of it, `[output, batch]` each.
        public var activations: Double
        /// What the stage keeps for its backward pass or works in: im2col columns, LRN's
        /// denominators and tile, max-pool's argmax, dropout's mask.
        public var workspace: Double
    }

    public let batch: Int
    public let stages: [StageMemory]
    /// Weights, their gradients and SGD momentum: three floats per parameter.
    public let parameters: Double
    /// The network's input batch and labels.
    public let input: Double
    /// The input-gradient columns every convolution shares, a chunk of images at a time.
    public let sharedScratch: Double

    static let floatBytes = 4.0

    /// `stages` are the plan's stages for the communicator the rank is in (`plan.stages(ranks:)`).
    /// Every stride-1 convolution also holds the buffers of each Winograd output tile of
    /// `winogradTiles` that it supports (`ConvolutionAlgorithmRequest.winogradTiles`): `auto`
    /// times every candidate at start-up, and the passes may keep different tiles.
    /// In the hybrid layout (`NetworkPlan.hybridStages`) the whole-batch stages hold `replicas`
    /// times `batch` images (the replica's share).
    public init(stages plans: [StagePlan], input: Shape, batch: Int, replicas: Int = 1, winogradTiles: [Int] = []) {
        self.batch = batch
        let f = Self.floatBytes
        var rows: [StageMemory] = []
        var scratch = 0.0
        for stage in plans {
            let images = stage.wholeBatch ? batch * replicas : batch
            let outputFloats = Double(stage.output.size) * Double(images)
            let buffers = Self.allocations(stage, batch: images, winogradTiles: winogradTiles)
            var workspace = buffers.ownElements
            if stage.op == .gatherImages || stage.acrossRanks {
                // HybridGather's blocks as they arrive, and the padded blocks of its reduce-scatter.
                let mode: GatherBackward = stage.op == .gather(.slice) ? .slice : .sum
                let blocks: HybridBlocks = stage.op == .gatherImages
                    ? .images(towerFeatures: stage.rankChannels, replicas: replicas) : .slices(stage.rankChannels)
                workspace += Double(blocks.workspaceFloats(backward: mode, maxShare: batch, replicas: replicas))
            }
            scratch = max(scratch, buffers.sharedElements)
            rows.append(StageMemory(layer: stage.layer, op: stage.op.displayName, activations: 2 * outputFloats * f, workspace: workspace * f))
        }
        stages = rows
        parameters = 3 * Double(plans.reduce(0) { $0 + $1.parameterCount }) * f
        // The labels, and in the hybrid layout the whole batch's gathered (Network.gatherLabels).
        self.input = Double(input.size) * Double(batch) * f + Double(batch) * 4 + (replicas > 1 ? 2 * Double(batch * replicas) * f : 0)
        sharedScratch = scratch * f
    }

    /// The buffers `stage` allocates beyond its output and gradient, as its layer lists them:
    /// a convolution's with those of every Winograd engine of `winogradTiles` it supports.
    /// Linear, ReLU, flatten and the gathers hold none (their weights are in the arena).
    public static func allocations(_ stage: StagePlan, batch: Int, winogradTiles: [Int] = []) -> [Allocation] {
        switch stage.op {
        case let .convolution(kernel, stride, _, groups):
            let gemm = Convolution.allocations(input: stage.input, output: stage.output, kernel: kernel, groups: groups,
                                               maxBatch: batch)
            guard stride == 1 else { return gemm }
            return gemm + winogradTiles.filter { $0 + kernel - 1 <= 8 }.flatMap { tile in
                WinogradConvolution.allocations(outputTile: tile, kernel: kernel, input: stage.input, output: stage.output,
                                                groups: groups, maxBatch: batch)
            }
        case .lrn:
            return LocalResponseNorm.allocations(shape: stage.output, maxBatch: batch)
        case .maxPool:
            return MaxPool.allocations(output: stage.output, maxBatch: batch)
        case .dropout:
            return Dropout.allocations(features: stage.output.size, maxBatch: batch)
        case .linear, .relu, .flatten, .gather, .gatherImages:
            return []
        }
    }

    public var activations: Double { stages.reduce(0) { $0 + $1.activations } }
    public var workspace: Double { stages.reduce(0) { $0 + $1.workspace } + sharedScratch }
    /// Everything the network of one rank holds.
    public var total: Double { parameters + input + activations + workspace }
}

/// Sizes in words: `512 B`, `3.4 MiB`, `1.21 GiB`, `2.0 TiB`; past 1024 EiB, `2.3e+25 B`.
public func formatBytes(_ bytes: Double) -> String {
    if bytes >= 0x1p70 { return String(format: "%.1e B", bytes) }
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = bytes, unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    if unit == 0 { return "\(Int(value)) B" }
    return String(format: value < 10 ? "%.2f %@" : value < 100 ? "%.1f %@" : "%.0f %@", value, units[unit])
}
