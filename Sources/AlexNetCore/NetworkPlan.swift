/// The three models that `compare` sets side by side (docs/models.md).
public enum ModelKind: String, CaseIterable, Sendable, Codable {
    /// Two towers with the paper's connectivity.
    case split
    /// One tower, the same total kernels, every layer reads all channels.
    case unsplit
    /// The paper's one-GPU baseline: half the kernels in every conv layer but the last.
    case paper1GPU = "paper-1gpu"

    /// Towers that the model's kernels are divided into.
    public var towers: Int { self == .split ? 2 : 1 }
}

/// A layer of a model: a row of the spec with the model's widths and connectivity applied.
public struct LayerPlan: Sendable {
    public var spec: LayerSpec
    /// Position in the table; keys the layer's random streams.
    public var index: Int
    /// Kernels each tower holds, tower by tower. Even for every layer but the class layer, whose
    /// C outputs split as evenly as they go: tower t gets C/T, plus one if t < C % T.
    public var towerOutputs: [Int]
    /// Whether the layer reads every tower's channels.
    public var readsAllTowers: Bool

    /// Kernels held by towers `towers` together.
    public func outputs(ofTowers towers: Range<Int>) -> Int { towerOutputs[towers].reduce(0, +) }
    /// Kernels in the whole layer.
    public var totalOutputs: Int { towerOutputs.reduce(0, +) }
}

/// A problem with a requested model, in words a user can act on.
public struct PlanError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A model of a spec: its towers and layers.
public struct NetworkPlan: Sendable {
    public let spec: ModelSpec
    public let model: ModelKind
    public let layers: [LayerPlan]

    public init(spec: ModelSpec, model: ModelKind) throws {
        guard spec.classes >= 2 else {
            throw PlanError("\(spec.classes == 1 ? "1 class" : "\(spec.classes) classes"): a classifier needs at least 2; give data with 2 or more classes")
        }
        self.spec = spec
        self.model = model
        let towers = model.towers
        let lastConv = spec.layers.lastIndex { if case .convolution = $0.kind { true } else { false } }
        layers = try spec.layers.enumerated().map { index, layer in
            var total = spec.outputs(of: layer)
            if model == .paper1GPU, case .convolution = layer.kind, index != lastConv { total /= 2 }
            // Only the classes may split unevenly: the layer is last and reads every tower, so
            // nothing after it needs equal shares and the one-process reference holds it whole.
            let mayBeUneven = layer.outputs == nil && index == spec.layers.count - 1 && layer.reads == .allTowers
            guard total % towers == 0 || mayBeUneven else {
                throw PlanError("\(layer.name) has \(total) outputs, which do not split evenly over \(towers) towers; make its width a multiple of \(towers) or use --model unsplit")
            }
            return LayerPlan(spec: layer, index: index, towerOutputs: Self.evenShares(total, over: towers),
                             readsAllTowers: towers == 1 || layer.reads == .allTowers)
        }
    }

    /// `total` split over `parts` as evenly as it goes, the larger shares first: part p gets
    /// total/parts, plus one if p < total % parts (5 over 2: [3, 2]).
    public static func evenShares(_ total: Int, over parts: Int) -> [Int] {
        (0..<parts).map { total / parts + ($0 < total % parts ? 1 : 0) }
    }

    public var towers: Int { model.towers }
    public var classes: Int { spec.classes }

    /// The operations rank `rank` runs when `ranks` ranks share the towers equally (each then
    /// holds `towers / ranks` of them as groups). The ranks' plans differ only in the class
    /// layer's width when the classes do not split evenly.
    public func stages(ranks: Int, rank: Int = 0) throws -> [StagePlan] {
        guard ranks >= 1, towers % ranks == 0, (0..<ranks).contains(rank) else {
            throw PlanError("the \(model.rawValue) model has \(towers) tower(s) and cannot be split over \(ranks) ranks")
        }
        let groups = towers / ranks
        let towersOf = { (r: Int) in (r * groups)..<((r + 1) * groups) }
        var shape = spec.input
        var shares: [Int]? = nil  // when this rank holds only its towers' channels: every rank's channel count
        var spatial = true   // is the activation still [C, n, H, W]? (even at 1x1, PyTorch needs a Flatten)
        var plans: [StagePlan] = []
        func add(_ layer: LayerPlan, _ op: StageOp, _ output: Shape, gathering: [Int] = []) {
            plans.append(StagePlan(layer: layer.spec.name, layerIndex: layer.index, op: op, input: shape, output: output,
                                   rankChannels: gathering))
            shape = output
        }
        for layer in layers {
            let inputGroups = layer.readsAllTowers ? 1 : groups
            if case .fullyConnected = layer.spec.kind, spatial {
                shares = shares?.map { $0 * shape.planeSize }
                add(layer, .flatten, Shape(channels: shape.size))
                spatial = false
            }
            if layer.readsAllTowers, let parts = shares {
                add(layer, .gather(.sum), Shape(channels: parts.reduce(0, +), height: shape.height, width: shape.width), gathering: parts)
                shares = nil
            }
            let outputs = layer.outputs(ofTowers: towersOf(rank))
            switch layer.spec.kind {
            case let .convolution(kernel, stride, padding):
                let size = { convolutionOutputSize(input: $0, kernel: kernel, stride: stride, padding: padding) }
                guard size(shape.height) >= 1, size(shape.width) >= 1 else {
                    throw PlanError("\(layer.spec.name) gets a \(shape) input, too small for its \(kernel)x\(kernel) kernel")
                }
                add(layer, .convolution(kernel: kernel, stride: stride, padding: padding, groups: inputGroups),
                    Shape(channels: outputs, height: size(shape.height), width: size(shape.width)))
            case .fullyConnected:
                add(layer, .linear(groups: inputGroups), Shape(channels: outputs))
            }
            shares = ranks > 1 ? (0..<ranks).map { layer.outputs(ofTowers: towersOf($0)) } : nil
            if layer.spec.relu { add(layer, .relu, shape) }
            if layer.spec.lrn { add(layer, .lrn(groups: groups), shape) }
            if layer.spec.pool { add(layer, .maxPool(size: 3, stride: 2), try pooled(shape, layer: layer.spec.name)) }
            if layer.spec.dropout > 0 { add(layer, .dropout(rate: layer.spec.dropout, groups: groups), shape) }
        }
        if let parts = shares, let last = layers.last {
            add(last, .gather(.slice), Shape(channels: parts.reduce(0, +)), gathering: parts)
        }
        return plans
    }

    /// The output of the 3/2 max-pool that follows `layer`.
    private func pooled(_ shape: Shape, layer: String) throws -> Shape {
        guard shape.height >= 3, shape.width >= 3 else {
            throw PlanError("\(layer)'s pool gets a \(shape) input, smaller than its 3x3 window")
        }
        let size = { convolutionOutputSize(input: $0, kernel: 3, stride: 2, padding: 0) }
        return Shape(channels: shape.channels, height: size(shape.height), width: size(shape.width))
    }
}

/// One operation as planned for one rank: enough to count, print and build it.
public struct StagePlan: Sendable {
    public var layer: String
    public var layerIndex: Int
    public var op: StageOp
    /// Per-sample shapes on this rank.
    public var input: Shape
    public var output: Shape
    /// For a gather: the channels (features, once flat) each rank contributes, in rank order;
    /// unequal when the classes do not split evenly. Empty for every other operation.
    public var rankChannels: [Int] = []
    /// The hybrid layout only (HybridPlan.swift). `wholeBatch`: the stage computes on every image
    /// of the step's global batch, not on its replica's share. `acrossRanks`: the gather runs over
    /// every rank (the slices of a fully-connected layer), not over the pair. `firstUnit`: where
    /// this rank's units start within its tower's units of the layer (a linear or dropout stage).
    public var wholeBatch = false
    public var acrossRanks = false
    public var firstUnit = 0

    /// Trainable numbers on this rank.
    public var parameterCount: Int {
        switch op {
        case let .convolution(kernel, _, _, groups):
            return output.channels * (input.channels / groups) * kernel * kernel + output.channels
        case let .linear(groups):
            return output.channels * (input.channels / groups) + output.channels
        default:
            return 0
        }
    }

    /// Forward multiply-adds times two, per image, on this rank.
    public var forwardFLOPs: Int {
        switch op {
        case let .convolution(kernel, _, _, groups):
            return 2 * output.size * (input.channels / groups) * kernel * kernel
        case let .linear(groups):
            return 2 * output.channels * (input.channels / groups)
        default:
            return 0
        }
    }
}

/// What a stage does.
/// How a gather's gradient goes back to the ranks (`CrossTowerGather`): summed over the ranks
/// and scattered (`.sum`), or sliced (`.slice`).
public enum GatherBackward: Sendable { case sum, slice }

public enum StageOp: Equatable, Sendable {
    case convolution(kernel: Int, stride: Int, padding: Int, groups: Int)
    case linear(groups: Int)
    case relu
    case lrn(groups: Int)
    case maxPool(size: Int, stride: Int)
    case dropout(rate: Float, groups: Int)
    case flatten
    case gather(GatherBackward)
    /// The hybrid layout's gather of every rank's images into the whole batch (HybridPlan.swift).
    case gatherImages

    /// The PyTorch-style name used in summaries.
    public var displayName: String {
        switch self {
        case .convolution: "Conv2d"
        case .linear: "Linear"
        case .relu: "ReLU"
        case .lrn: "LRN"
        case .maxPool: "MaxPool2d"
        case .dropout: "Dropout"
        case .flatten: "Flatten"
        case .gather: "AllGather"
        case .gatherImages: "AllGatherImages"
        }
    }
}
