import Foundation

/// The memory one rank of a network holds for a batch of `batch` images, computed from the plan
/// alone, stage by stage, as the layers allocate it (Network.swift and the layer files): every
/// buffer is sized once for the largest batch, so this is also the rank's steady state.
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
            var (workspace, scratchNeed) = Self.workspace(stage, batch: images)
            if stage.op == .gatherImages || stage.acrossRanks {
                // HybridGather's blocks as they arrive, and the padded blocks of its reduce-scatter.
                let mode: GatherBackward = stage.op == .gather(.slice) ? .slice : .sum
                let blocks: HybridBlocks = stage.op == .gatherImages
                    ? .images(towerFeatures: stage.rankChannels, replicas: replicas) : .slices(stage.rankChannels)
                workspace += Double(blocks.workspaceFloats(backward: mode, maxShare: batch, replicas: replicas))
            }
            if !winogradTiles.isEmpty {
                let transforms = Self.winogradWorkspace(stage, batch: batch, tiles: winogradTiles)
                workspace += transforms.own
                scratchNeed = max(scratchNeed, transforms.scratch)
            }
            scratch = max(scratch, scratchNeed)
            rows.append(StageMemory(layer: stage.layer, op: stage.op.displayName, activations: 2 * outputFloats * f, workspace: workspace * f))
        }
        stages = rows
        parameters = 3 * Double(plans.reduce(0) { $0 + $1.parameterCount }) * f
        // The labels, and in the hybrid layout the whole batch's gathered (Network.gatherLabels).
        self.input = Double(input.size) * Double(batch) * f + Double(batch) * 4 + (replicas > 1 ? 2 * Double(batch * replicas) * f : 0)
        sharedScratch = scratch * f
    }

    /// Floats a stage keeps beyond its output and gradient, and floats of shared scratch it needs.
    static func workspace(_ stage: StagePlan, batch: Int) -> (own: Double, scratch: Double) {
        let n = Double(batch)
        switch stage.op {
        case let .convolution(kernel, _, _, groups):
            // Convolution.swift: columns of every group for the whole batch; the input
            // gradient's columns a chunk of about 4 Mi floats (at least one image) at a time.
            let rows = stage.input.channels / groups * kernel * kernel
            let plane = stage.output.planeSize
            let chunk = max(1, min(batch, (4 << 20) / max(rows * plane, 1)))
            return (Double(groups * rows * plane) * n, Double(rows * chunk * plane))
        case .lrn:
            // Normalization.swift: the denominators for backward, and a tile of every channel.
            let channels = stage.output.channels
            let tile = LocalResponseNorm.tileLength(channels: channels, positions: stage.output.planeSize * batch)
            return (Double(stage.output.size) * n + Double(channels * tile), 0)
        case .maxPool, .dropout:
            // The argmax (Int32) or the mask (Float): one per output element.
            return (Double(stage.output.size) * n, 0)
        default:
            return (0, 0)
        }
    }

    /// Floats of the Winograd engines a stride-1 convolution may build (WinogradConvolution.swift):
    /// for each tile m x m it supports (alpha = m + k - 1 at most 8), the transformed input
    /// `[C][alpha²][tiles]` (each channel's block 16 floats longer), the transformed filter and
    /// its gradient `[alpha²][O][C/groups]`, and the weight gradient's staging `[O][C/groups][k²]`;
    /// and the shared scratch `(O/groups + 2 + min(C/groups, max(O/groups, 16))) * (alpha² * tiles + 16)`.
    static func winogradWorkspace(_ stage: StagePlan, batch: Int, tiles: [Int]) -> (own: Double, scratch: Double) {
        guard case let .convolution(kernel, stride, _, groups) = stage.op, stride == 1 else { return (0, 0) }
        var own = 0.0, scratch = 0.0
        for tile in tiles where tile + kernel - 1 <= 8 {
            let area = Double((tile + kernel - 1) * (tile + kernel - 1))
            let tilesPerImage = ((stage.output.height + tile - 1) / tile) * ((stage.output.width + tile - 1) / tile)
            let tiles = Double(batch * tilesPerImage)
            let inputs = Double(stage.input.channels), outputs = Double(stage.output.channels), g = Double(groups)
            own += inputs * (area * tiles + 16) + 2 * area * outputs * inputs / g + outputs * inputs / g * Double(kernel * kernel)
            let inputGradientBlock = Double(WinogradConvolution.inputGradientBlock(channels: Int(inputs / g), outputs: Int(outputs / g)))
            scratch = max(scratch, (outputs / g + 2 + inputGradientBlock) * (area * tiles + 16))
        }
        return (own, scratch)
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
