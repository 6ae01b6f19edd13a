import AlexNetCore
import AlexNetData

/// The values of a run's settings. Each field's initial value is the setting's default, written
/// only here; `RunConfiguration` declares each setting's option, range, resume rule and manifest
/// key against these fields. config.json records the whole value.
public struct TrainingOptions: Sendable, Codable {
    public var preset: Preset = .small
    public var model: ModelKind = .split
    public var epochs = 3
    /// Whether `epochs` was given; when resuming, the checkpoint's count applies otherwise.
    public var epochsGiven = true
    public var batchSize = 128
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0.0005
    public var seed: UInt64 = 1
    public var dataDirectory = FashionMNIST.defaultDirectory
    /// Whether `dataDirectory` was given; when resuming, the checkpoint's applies otherwise.
    public var dataDirectoryGiven = true
    /// How the data is read and prepared.
    public var data = DataSettings()
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
    /// Replace existing output files (`--force`); a run's own folder is always its own.
    public var replaceOutputs = false
    /// OpenBLAS threads for a one-tower model that runs alone in its process.
    public var threadsForOneTower = 2
    /// How the learning rate changes between epochs (the paper's plateau rule by default).
    public var schedule = ScheduleKind.plateau
    public var scheduleFactor: Float = 0.1
    public var schedulePatience = 2
    public var scheduleMinimum: Float = 1e-5
    public var scheduleStepEpochs = 10
    /// A checkpoint every N steps as well as after every epoch (nil: epochs only).
    public var checkpointEvery: Int?
    /// How many checkpoints to keep.
    public var keepCheckpoints = 3
    /// Write checkpoints at all.
    public var checkpoints = true
    /// A run directory or checkpoint to continue from.
    public var resume: String?
    /// Replicas of the split model (`--replicas`): 2R simulated ranks; under mpirun nil means
    /// the ranks / 2, and a value that disagrees is an error.
    public var replicas: Int?
    /// How the convolutions compute (`--conv-algorithm`). Not given: a resumed run's recorded
    /// algorithms, else GEMM, so that two runs with the same seed give the same bits whatever
    /// the machine's timings.
    public var convolutionAlgorithm: ConvolutionAlgorithmRequest?
    /// How replicas share the model (`--replica-layout`). Not given: a resumed run's recorded
    /// layout, else hybrid (`ReplicaLayoutKind.effective`); with one replica it changes nothing.
    public var replicaLayout: ReplicaLayoutKind?
    /// How the replicas' gradient sum overlaps the backward pass (`--bucket-mib`, `--progress`).
    /// Not recorded in checkpoints: it changes no bit of the result.
    public var overlap = GradientOverlap()
    /// Every rank a thread of this process (`--simulate`); read by the command line's launcher.
    public var simulate = false
    /// Seconds one MPI collective may wait before the job ends (`--collective-timeout`; 0: no
    /// limit); read by the command line's launcher.
    public var collectiveTimeout = 60.0

    /// The schedule these options start with.
    public var initialSchedule: LearningRateSchedule {
        var s = LearningRateSchedule(kind: schedule, initialRate: learningRate)
        s.factor = scheduleFactor
        s.patience = schedulePatience
        s.minimum = scheduleMinimum
        s.stepEpochs = scheduleStepEpochs
        return s
    }

    public init() {}
}
