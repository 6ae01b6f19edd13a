import AlexNetCore
import AlexNetData

/// Everything a training run is told from the command line.
public struct TrainingOptions: Sendable {
    public var preset: Preset = .small
    public var model: ModelKind = .split
    public var epochs = 3
    public var batchSize = 128
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0.0005
    public var seed: UInt64 = 1
    public var dataDirectory = FashionMNIST.defaultDirectory
    /// Where metrics go; a fresh `runs/<preset>-<model>-<time>` when nil.
    public var runDirectory: String?
    /// Overrides the preset's initialisation.
    public var initialization: Initialization?
    /// Progress line every this many steps.
    public var logEvery = 50
    public var trainLimit: Int?
    public var testLimit: Int?
    /// Stop after this many steps in all (for tests and benchmarks).
    public var maxSteps: Int?
    /// Write each rank's final weights to `<prefix>-tower<t>.safetensors`.
    public var dumpWeightsPrefix: String?
    /// OpenBLAS threads for a one-tower model that runs alone in its process.
    public var threadsForOneTower = 2

    public init() {}
}
