/// How a layer's kernels slide over its input.
public enum LayerKind: Equatable, Sendable {
    case convolution(kernel: Int, stride: Int, padding: Int)
    case fullyConnected
}

/// Which towers' outputs a layer reads in the split model (docs/architecture.md, "The split").
public enum Reads: Equatable, Sendable {
    /// Only its own tower's channels.
    case ownTower
    /// Both towers' channels: a cross-connected layer (and conv1, which reads the image).
    case allTowers
}

/// One row of a preset's layer table: the architecture is data.
public struct LayerSpec: Equatable, Sendable {
    public var name: String
    public var kind: LayerKind
    /// Kernels (or units) in the whole model; `nil` means one per class.
    public var outputs: Int?
    public var reads: Reads
    public var relu: Bool
    public var lrn: Bool
    /// Max-pool 3/2 after the layer.
    public var pool: Bool
    /// Dropout rate after the layer, 0 for none.
    public var dropout: Float
    /// Initial bias under the paper's Gaussian initialisation (§5).
    public var paperBias: Float

    public init(_ name: String, _ kind: LayerKind, outputs: Int?, reads: Reads, relu: Bool = true, lrn: Bool = false,
                pool: Bool = false, dropout: Float = 0, paperBias: Float = 0) {
        self.name = name
        self.kind = kind
        self.outputs = outputs
        self.reads = reads
        self.relu = relu
        self.lrn = lrn
        self.pool = pool
        self.dropout = dropout
        self.paperBias = paperBias
    }
}

/// The LRN constants of the paper (§3.3); alpha is not divided by the window.
public struct LRNSettings: Equatable, Sendable {
    public var size = 5
    public var alpha: Float = 1e-4
    public var beta: Float = 0.75
    public var k: Float = 2
    public init() {}
}

/// How weights start.
public enum Initialization: String, CaseIterable, Sendable, Codable {
    /// Paper §5: weights N(0, 0.01), biases per layer (1 in conv2, conv4, conv5, fc6, fc7).
    case paper
    /// Xavier (Glorot) uniform weights, zero biases, as d2l's AlexNet chapter.
    case xavier
}

/// A whole network at one size: input, classes and the layer table.
public struct ModelSpec: Equatable, Sendable {
    public var name: String
    public var input: Shape
    public var classes: Int
    public var layers: [LayerSpec]
    public var lrn = LRNSettings()
    public var initialization: Initialization

    /// Kernels in `layer` for the whole model.
    public func outputs(of layer: LayerSpec) -> Int { layer.outputs ?? classes }
}

/// The named presets (docs/models.md).
public enum Preset: String, CaseIterable, Sendable, Codable {
    case paper, d2l, small
    /// A few-pixel net with every layer kind, for tests; hidden from users' help.
    case tiny

    public static var userFacing: [Preset] { [.paper, .d2l, .small] }

    public func spec(classes: Int) -> ModelSpec {
        switch self {
        case .paper:
            return ModelSpec(name: "paper", input: Shape(channels: 3, height: 227, width: 227), classes: classes, layers: [
                LayerSpec("conv1", .convolution(kernel: 11, stride: 4, padding: 0), outputs: 96, reads: .allTowers, lrn: true, pool: true),
                LayerSpec("conv2", .convolution(kernel: 5, stride: 1, padding: 2), outputs: 256, reads: .ownTower, lrn: true, pool: true, paperBias: 1),
                LayerSpec("conv3", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 384, reads: .allTowers),
                LayerSpec("conv4", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 384, reads: .ownTower, paperBias: 1),
                LayerSpec("conv5", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 256, reads: .ownTower, pool: true, paperBias: 1),
                LayerSpec("fc6", .fullyConnected, outputs: 4096, reads: .allTowers, dropout: 0.5, paperBias: 1),
                LayerSpec("fc7", .fullyConnected, outputs: 4096, reads: .allTowers, dropout: 0.5, paperBias: 1),
                LayerSpec("fc8", .fullyConnected, outputs: nil, reads: .allTowers, relu: false),
            ], initialization: .paper)
        case .d2l:
            return ModelSpec(name: "d2l", input: Shape(channels: 1, height: 224, width: 224), classes: classes, layers: [
                LayerSpec("conv1", .convolution(kernel: 11, stride: 4, padding: 1), outputs: 96, reads: .allTowers, pool: true),
                LayerSpec("conv2", .convolution(kernel: 5, stride: 1, padding: 2), outputs: 256, reads: .ownTower, pool: true),
                LayerSpec("conv3", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 384, reads: .allTowers),
                LayerSpec("conv4", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 384, reads: .ownTower),
                LayerSpec("conv5", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 256, reads: .ownTower, pool: true),
                LayerSpec("fc6", .fullyConnected, outputs: 4096, reads: .allTowers, dropout: 0.5),
                LayerSpec("fc7", .fullyConnected, outputs: 4096, reads: .allTowers, dropout: 0.5),
                LayerSpec("fc8", .fullyConnected, outputs: nil, reads: .allTowers, relu: false),
            ], initialization: .xavier)
        case .small:
            return ModelSpec(name: "small", input: Shape(channels: 1, height: 32, width: 32), classes: classes, layers: [
                LayerSpec("conv1", .convolution(kernel: 5, stride: 1, padding: 2), outputs: 24, reads: .allTowers, lrn: true, pool: true),
                LayerSpec("conv2", .convolution(kernel: 5, stride: 1, padding: 2), outputs: 64, reads: .ownTower, lrn: true, pool: true, paperBias: 1),
                LayerSpec("conv3", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 96, reads: .allTowers),
                LayerSpec("conv4", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 96, reads: .ownTower, paperBias: 1),
                LayerSpec("conv5", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 64, reads: .ownTower, pool: true, paperBias: 1),
                LayerSpec("fc6", .fullyConnected, outputs: 1024, reads: .allTowers, dropout: 0.5, paperBias: 1),
                LayerSpec("fc7", .fullyConnected, outputs: 1024, reads: .allTowers, dropout: 0.5, paperBias: 1),
                LayerSpec("fc8", .fullyConnected, outputs: nil, reads: .allTowers, relu: false),
            ], initialization: .xavier)
        case .tiny:
            // Stride, padding, LRN windows clipped at tower edges (4 channels per tower, window 5),
            // overlapping pools, cross and own-tower layers, dropout: every kind, a few pixels.
            return ModelSpec(name: "tiny", input: Shape(channels: 2, height: 15, width: 15), classes: classes, layers: [
                LayerSpec("conv1", .convolution(kernel: 5, stride: 2, padding: 2), outputs: 8, reads: .allTowers, lrn: true, pool: true),
                LayerSpec("conv2", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 12, reads: .ownTower, lrn: true),
                LayerSpec("conv3", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 8, reads: .allTowers, paperBias: 0.1),
                LayerSpec("conv4", .convolution(kernel: 3, stride: 1, padding: 1), outputs: 8, reads: .ownTower),
                LayerSpec("conv5", .convolution(kernel: 3, stride: 1, padding: 0), outputs: 8, reads: .ownTower, pool: false),
                LayerSpec("fc6", .fullyConnected, outputs: 16, reads: .allTowers, dropout: 0.5, paperBias: 0.1),
                LayerSpec("fc7", .fullyConnected, outputs: 16, reads: .allTowers, dropout: 0.5),
                LayerSpec("fc8", .fullyConnected, outputs: nil, reads: .allTowers, relu: false),
            ], initialization: .xavier)
        }
    }
}
