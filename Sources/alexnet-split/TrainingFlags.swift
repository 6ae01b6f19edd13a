import AlexNetCore
import AlexNetData
import AlexNetMPI
import AlexNetTraining
import ArgumentParser
import Foundation

/// The options that every training command shares.
struct TrainingFlags: ParsableArguments {
    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup(title: "Data") var dataFlags: DataFlags

    @OptionGroup var convolutionFlags: ConvolutionFlags

    @Option(help: "Passes over the training set (default 3; when resuming, the checkpoint's).")
    var epochs: Int?

    @Option(help: "Learning-rate schedule: plateau (the paper's: divide by 10 when the test error stops improving), step or constant.")
    var lrSchedule: ScheduleKind = .plateau

    @Option(help: "Epochs without improvement before plateau divides the rate.")
    var lrPatience = 2

    @Option(help: "Epochs between divisions for the step schedule.")
    var lrStepEpochs = 10

    @Option(help: "The factor the rate is multiplied by (plateau and step).")
    var lrFactor: Float = 0.1

    @Option(help: "The rate never goes below this.")
    var lrMin: Float = 1e-5

    @Option(help: "Images per step (the paper's 128).")
    var batchSize = 128

    @Option(help: "Learning rate of SGD with momentum.")
    var lr: Float = 0.01

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(help: "Weight decay.")
    var weightDecay: Float = 0.0005

    @Option(help: "Seed for weights, data order and dropout.")
    var seed: UInt64 = 1

    @Option(help: "The data: a folder of IDX files (gzip or raw), of CIFAR-10/100 binary batches, or of class folders of JPEG/PNG photos (train/<class>/*, val/<class>/*). Default \(FashionMNIST.defaultDirectory); when resuming, the checkpoint's.")
    var data: String?

    @Option(help: "Where results go (default: runs/<preset>-<model or compare>-<time>).")
    var runDir: String?

    @Option(help: "Override the preset's initialisation: paper (N(0, 0.01), biases of 1) or xavier.")
    var initialization: Initialization?

    @Option(help: "Print a progress line every N steps.")
    var logEvery = 50

    @Option(help: "Use only the first N training images.")
    var trainLimit: Int?

    @Option(help: "Use only the first N test images.")
    var testLimit: Int?

    @Flag(help: "Run both towers as threads of this process instead of one per MPI rank.")
    var simulate = false

    @Option(help: "Under mpirun, end the job with an error when one MPI collective has waited this many seconds (a host or the network between the ranks gone); 0 waits forever.")
    var collectiveTimeout = MPICommunicator.defaultCollectiveTimeout

    @Option(help: "Replicas of the split model, each given its share of every batch (with --simulate: 2R threads; under mpirun it is the ranks / 2).")
    var replicas: Int?

    func validate() throws {
        // The ranges are shared with the checkpoint manifest's reader (SettingRules).
        if let problem = SettingRules.problem(in: options) { throw ValidationError(problem.forCommandLine) }
        guard collectiveTimeout.isFinite, collectiveTimeout >= 0 else {
            throw ValidationError("--collective-timeout must be a number of seconds, or 0 for no limit (got \(collectiveTimeout))")
        }
        if let replicas {
            guard replicas == 1 || modelOptions.model.towers > 1 else {
                throw ValidationError("--replicas applies to the split model; the \(modelOptions.model.rawValue) model runs on one rank")
            }
            guard batchSize % replicas == 0 else {
                let lower = batchSize / replicas * replicas
                throw ValidationError("--batch-size \(batchSize) does not split evenly over \(replicas) replicas: use a multiple of \(replicas), such as \(lower > 0 ? "\(lower) or " : "")\(lower + replicas)")
            }
        }
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
        o.convolutionAlgorithm = convolutionFlags.request
        return o
    }

    /// Runs `body` on every rank: under mpirun one process per rank, otherwise (or with
    /// --simulate) `towers` threads of this process, times `--replicas`. Throws the exit code if it is not 0.
    /// `runDirectory`, when known, is named in the error of a collective that times out.
    func launch(towers: Int, runDirectory: String? = nil, _ body: @escaping (Communicator, String) -> Int32) throws {
        StopRequest.install()
        let code: Int32
        if simulate || !MPICommunicator.launchedByMPI {
            if !simulate {
                print("note: not started by mpirun, so both towers run as threads of this process (as with --simulate); for one tower per process, run `mpirun -np 2 alexnet-split ...`")
            }
            code = Trainer.simulate(towers: towers, replicas: replicas ?? 1, body)
        } else {
            let communicator = MPICommunicator(collectiveTimeout: collectiveTimeout)
            communicator.setRunDirectory(runDirectory ?? self.runDir)
            let size = communicator.size
            code = body(communicator, towers > 1 && size > towers && size % towers == 0
                ? "\(size) MPI ranks: \(size / towers) replicas of the \(towers) towers, one tower per rank"
                : "\(size) MPI ranks, one tower each")
            communicator.finalize()
        }
        if code != 0 { throw ExitCode(code) }
    }
}
