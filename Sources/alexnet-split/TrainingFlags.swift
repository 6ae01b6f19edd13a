import AlexNetCore
import AlexNetData
import AlexNetMPI
import AlexNetTraining
import ArgumentParser
import Foundation

/// The options that every training command shares.
extension GradientOverlap.Progress: ExpressibleByArgument {}
extension ReplicaLayoutKind: ExpressibleByArgument {}

struct TrainingFlags: ParsableArguments {
    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup(title: "Data") var dataFlags: DataFlags

    @OptionGroup var convolutionFlags: ConvolutionFlags

    @Option(parsing: .unconditional, help: "Passes over the training set (default 3; when resuming, the checkpoint's).")
    var epochs: Int?

    @Option(help: "Learning-rate schedule: plateau (the paper's: divide by 10 when the test error stops improving), step or constant.")
    var lrSchedule: ScheduleKind = .plateau

    @Option(parsing: .unconditional, help: "Epochs without improvement before plateau divides the rate.")
    var lrPatience = 2

    @Option(parsing: .unconditional, help: "Epochs between divisions for the step schedule.")
    var lrStepEpochs = 10

    @Option(parsing: .unconditional, help: "The factor the rate is multiplied by (plateau and step).")
    var lrFactor: Float = 0.1

    @Option(parsing: .unconditional, help: "The rate never goes below this.")
    var lrMin: Float = 1e-5

    @Option(parsing: .unconditional, help: "Images per step (the paper's 128).")
    var batchSize = 128

    @Option(parsing: .unconditional, help: "Learning rate of SGD with momentum.")
    var lr: Float = 0.01

    @Option(parsing: .unconditional, help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(parsing: .unconditional, help: "Weight decay.")
    var weightDecay: Float = 0.0005

    @Option(parsing: .unconditional, help: "Seed for weights, data order and dropout (0 to 2^64-1).", transform: Self.parseSeed)
    var seed: UInt64 = 1

    @Option(help: "The data: a folder of IDX files (gzip or raw), of CIFAR-10/100 binary batches, or of class folders of JPEG/PNG photos (train/<class>/*, val/<class>/*). Default \(FashionMNIST.defaultDirectory); when resuming, the checkpoint's.")
    var data: String?

    @Option(help: "Where results go (default: runs/<preset>-<model or compare>-<time>).")
    var runDir: String?

    @Option(help: "Override the preset's initialisation: paper (N(0, 0.01), biases of 1) or xavier.")
    var initialization: Initialization?

    @Option(parsing: .unconditional, help: "Print a progress line every N steps.")
    var logEvery = 50

    @Option(parsing: .unconditional, help: "Use only the first N training images.")
    var trainLimit: Int?

    @Option(parsing: .unconditional, help: "Use only the first N test images.")
    var testLimit: Int?

    @Flag(help: "Run both towers as threads of this process instead of one per MPI rank.")
    var simulate = false

    @Option(parsing: .unconditional, help: "Under mpirun, end the job with an error when one MPI collective has waited this many seconds (a host or the network between the ranks gone); 0 waits forever.")
    var collectiveTimeout = MPICommunicator.defaultCollectiveTimeout

    @Option(parsing: .unconditional, help: "Replicas of the split model, each given its share of every batch (with --simulate: 2R threads; under mpirun it is the ranks / 2).")
    var replicas: Int?

    @Option(help: "How replicas share the model: hybrid (the convolutions data-parallel, fc6-fc8 split over every rank; the default with 2 or more replicas) or data (every layer data-parallel). A resumed run keeps its checkpoint's unless given.")
    var replicaLayout: ReplicaLayoutKind?

    @Option(parsing: .unconditional, help: "MiB of gradients per bucket of the replicas' gradient sum, which runs during the backward pass (DDP's default, 25).")
    var bucketMib = 25.0

    @Option(help: "Where MPI moves the replicas' gradient sums on during the backward pass: stages (tests between stages) or thread (also a thread of its own; MPI_THREAD_MULTIPLE).")
    var progress = GradientOverlap.Progress.stages

    func validate() throws {
        // The ranges are shared with the checkpoint manifest's reader (SettingRules).
        if let problem = SettingRules.problem(in: options) { throw ValidationError(problem.forCommandLine) }
        guard collectiveTimeout.isFinite, (0...Self.maxCollectiveTimeout).contains(collectiveTimeout) else {
            throw ValidationError("--collective-timeout must be a number of seconds up to \(Int(Self.maxCollectiveTimeout)), or 0 for no limit (got \(collectiveTimeout))")
        }
        if let replicas {
            try Self.checkThreads(replicas: replicas, inThisProcess: !MPICommunicator.launchedByMPI || simulate)
            guard replicas == 1 || modelOptions.model.towers > 1 else {
                throw ValidationError("--replicas applies to the split model; the \(modelOptions.model.rawValue) model runs on one rank")
            }
            guard batchSize % replicas == 0 else {
                let lower = batchSize / replicas * replicas
                throw ValidationError("--batch-size \(batchSize) does not split evenly over \(replicas) replicas: use a multiple of \(replicas), such as \(lower > 0 ? "\(lower) or " : "")\(lower + replicas)")
            }
        }
    }

    /// A week: longer than any collective should take, and short enough for the watchdog's nanoseconds.
    static let maxCollectiveTimeout = 604_800.0
    /// Simulated replicas run 2R threads of one process (InProcessGroup gives each 64 MiB of stack).
    static let maxSimulatedReplicas = 32

    /// Simulated replicas are threads of this process: at most `maxSimulatedReplicas` of them.
    static func checkThreads(replicas: Int, inThisProcess: Bool) throws {
        guard replicas <= maxSimulatedReplicas || !inThisProcess else {
            throw ValidationError("--replicas \(replicas) would run \(2 * replicas) threads in this process; simulate at most \(maxSimulatedReplicas) replicas, or run more as MPI ranks (mpirun -np \(2 * replicas))")
        }
    }

    /// `--seed`: negative numbers reach this, so they get a sentence instead of a parser message.
    static func parseSeed(_ text: String) throws -> UInt64 {
        guard let seed = UInt64(text) else { throw ValidationError("--seed must be a whole number from 0 to 2^64-1 (got \(text))") }
        return seed
    }

    var options: TrainingOptions {
        var o = TrainingOptions()
        o.preset = modelOptions.preset
        o.model = modelOptions.model
        o.epochs = epochs ?? 3
        o.epochsGiven = epochs != nil
        o.schedule = lrSchedule
        o.schedulePatience = lrPatience
        o.scheduleStepEpochs = lrStepEpochs
        o.scheduleFactor = lrFactor
        o.scheduleMinimum = lrMin
        o.batchSize = batchSize
        o.learningRate = lr
        o.momentum = momentum
        o.weightDecay = weightDecay
        o.seed = seed
        o.dataDirectory = data ?? FashionMNIST.defaultDirectory
        o.dataDirectoryGiven = data != nil
        o.data = dataFlags.settings
        o.runDirectory = runDir
        o.initialization = initialization
        o.logEvery = logEvery
        o.trainLimit = trainLimit
        o.testLimit = testLimit
        o.replicas = replicas
        o.replicaLayout = replicaLayout
        o.convolutionAlgorithm = convolutionFlags.request
        o.overlap.bucketMiB = bucketMib
        o.overlap.progress = progress
        return o
    }

    /// Runs `body` on every rank: under mpirun one process per rank, otherwise (or with
    /// --simulate) `towers` threads of this process, times `--replicas`. Throws the exit code if it is not 0.
    /// `runDirectory`, when known, is named in the error of a collective that times out.
    func launch(towers: Int, runDirectory: String? = nil, _ body: @escaping @Sendable (Communicator, String) -> Int32) throws {
        try launch(towers: towers, runDirectory: runDirectory, preflight: nil) { communicator, how, _ in body(communicator, how) }
    }

    /// As above, after `preflight`'s checks (before any rank allocates); `body` also gets the run
    /// folder the preflight settled on (the same on every rank).
    func launch(towers: Int, runDirectory: String? = nil, preflight: Preflight?,
                _ body: @escaping @Sendable (Communicator, String, String?) -> Int32) throws {
        StopRequest.install(speaks: MPICommunicator.launcherRank == 0)
        let code: Int32
        if simulate || !MPICommunicator.launchedByMPI {
            if !simulate {
                print("note: not started by mpirun, so both towers run as threads of this process (as with --simulate); for one tower per process, run `mpirun -np 2 alexnet-split ...`")
            }
            let folder = try preflight?.runHere(ranks: towers * (replicas ?? 1))
            code = Trainer.simulate(towers: towers, replicas: replicas ?? 1) { body($0, $1, folder) }
            if code == 0 { preflight?.reportPeak(ranks: towers * (replicas ?? 1)) }
        } else {
            let communicator = MPICommunicator(collectiveTimeout: collectiveTimeout, threadMultiple: progress == .thread)
            defer { communicator.finalize() }
            let (failed, folder) = preflight?.runAcrossRanks(communicator) ?? (0, nil)
            if failed != 0 { throw ExitCode(failed) }
            communicator.setRunDirectory(folder ?? runDirectory ?? self.runDir)
            let size = communicator.size
            code = body(communicator, towers > 1 && size > towers && size % towers == 0
                ? "\(size) MPI ranks: \(size / towers) replicas of the \(towers) towers, one tower per rank"
                : "\(size) MPI ranks, one tower each", folder)
            if code == 0 && communicator.rank == 0 { preflight?.reportPeak(ranks: 1) }
        }
        if code != 0 { throw ExitCode(code) }
    }

    /// The job as memory admission sees it, with the batch and data these options ask for.
    func memoryJob(_ options: TrainingOptions) -> MemoryJob {
        var job = MemoryJob(preset: options.preset, model: options.model, batchSize: options.batchSize, ranksHere: 1)
        job.replicas = options.replicas ?? 1
        job.replicaLayout = options.replicaLayout ?? (options.resume == nil ? .hybrid : nil)
        // Each step holds at most the training images there are (a --train-limit caps them).
        if let limit = options.trainLimit { job.batchSize = min(job.batchSize, max(limit, job.replicas)) }
        job.classes = DataFootprint.classes(directory: options.dataDirectory, settings: options.data)
        job.dataBytes = DataFootprint.estimate(directory: options.dataDirectory, settings: options.data, preset: options.preset)
        job.prefetch = options.data.prefetch
        job.writesWeights = options.checkpoints || options.dumpWeightsPrefix != nil
        // On --resume without --conv-algorithm the checkpoint's choice is not read yet: count auto's.
        job.winogradTiles = (options.convolutionAlgorithm ?? (options.resume != nil ? .auto : .gemm)).winogradTiles
        return job
    }
}
