import AlexNetCore

/// One epoch's numbers, as the coordinator measured them.
public struct EpochResult: Sendable, Equatable, Codable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testTop1: Double
    public var testTop5: Double
    public var seconds: Double
    /// A checksum of the epoch's data order: equal across models trained with the same seed.
    public var dataOrder: UInt64
}

/// What one training run produced (complete on rank 0; other ranks get the shape only).
public struct RunResult: Sendable {
    public var model: ModelKind
    public var seed: UInt64
    public var epochs: [EpochResult] = []
    public var steps = 0
    public var seconds = 0.0
    /// Training images per second over the whole run (evaluation excluded).
    public var imagesPerSecond = 0.0
    /// Stopped by Ctrl-C or SIGTERM before it finished.
    public var interrupted = false
    /// How the run used the machine, e.g. "2 MPI ranks, one tower each".
    public var launch = ""
    public var parameters = 0
    /// Forward FLOPs per image, all towers.
    public var forwardFLOPs = 0

    public var final: EpochResult? { epochs.last }
    /// The epoch with the best test top-1 (the first of equals).
    public var best: EpochResult? { epochs.max { $0.testTop1 < $1.testTop1 || ($0.testTop1 == $1.testTop1 && $0.epoch > $1.epoch) } }
}
