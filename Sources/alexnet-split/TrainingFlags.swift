import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetTraining
import ArgumentParser

extension GradientOverlap.Progress: ExpressibleByArgument {}
extension ReplicaLayoutKind: ExpressibleByArgument {}

private typealias C = RunConfiguration

/// The optimiser, its schedule and the seed.
struct OptimiserFlags: SettingGroupFlags {
    @Option(name: C.epochs.long, parsing: .unconditional, help: C.epochs.argumentHelp) var epochs: Int?
    @Option(name: C.batchSize.long, parsing: .unconditional, help: C.batchSize.argumentHelp) var batchSize: Int?
    @Option(name: C.learningRate.long, parsing: .unconditional, help: C.learningRate.argumentHelp) var lr: Float?
    @Option(name: C.momentum.long, parsing: .unconditional, help: C.momentum.argumentHelp) var momentum: Float?
    @Option(name: C.weightDecay.long, parsing: .unconditional, help: C.weightDecay.argumentHelp) var weightDecay: Float?
    @Option(name: C.seed.long, parsing: .unconditional, help: C.seed.argumentHelp, transform: Self.parseSeed) var seed: UInt64?
    @Option(name: C.schedule.long, help: C.schedule.argumentHelp) var lrSchedule: ScheduleKind?
    @Option(name: C.schedulePatience.long, parsing: .unconditional, help: C.schedulePatience.argumentHelp) var lrPatience: Int?
    @Option(name: C.scheduleStepEpochs.long, parsing: .unconditional, help: C.scheduleStepEpochs.argumentHelp) var lrStepEpochs: Int?
    @Option(name: C.scheduleFactor.long, parsing: .unconditional, help: C.scheduleFactor.argumentHelp) var lrFactor: Float?
    @Option(name: C.scheduleMinimum.long, parsing: .unconditional, help: C.scheduleMinimum.argumentHelp) var lrMin: Float?

    func bind(_ b: inout SettingBinder) {
        b.set(C.epochs, epochs)
        b.set(C.batchSize, batchSize)
        b.set(C.learningRate, lr)
        b.set(C.momentum, momentum)
        b.set(C.weightDecay, weightDecay)
        b.set(C.seed, seed)
        b.set(C.schedule, lrSchedule)
        b.set(C.schedulePatience, lrPatience)
        b.set(C.scheduleStepEpochs, lrStepEpochs)
        b.set(C.scheduleFactor, lrFactor)
        b.set(C.scheduleMinimum, lrMin)
    }

    /// `--seed`: negative numbers reach this, so they get a sentence instead of a parser message.
    static func parseSeed(_ text: String) throws -> UInt64 {
        guard let seed = UInt64(text) else { throw ValidationError("--seed must be a whole number from 0 to 2^64-1 (got \(text))") }
        return seed
    }
}

/// Where a run's results go and how often it speaks (train and compare).
struct RunFlags: SettingGroupFlags {
    @Option(name: C.runDirectory.long, help: C.runDirectory.argumentHelp) var runDir: String?
    @Option(name: C.logEvery.long, parsing: .unconditional, help: C.logEvery.argumentHelp) var logEvery: Int?

    func bind(_ b: inout SettingBinder) {
        b.setOptional(C.runDirectory, runDir)
        b.set(C.logEvery, logEvery)
    }
}

/// Resuming, stopping early, checkpoints and final weights (train only).
struct CheckpointFlags: SettingGroupFlags {
    @Option(name: C.resume.long, help: C.resume.argumentHelp) var resume: String?
    @Option(name: C.maxSteps.long, parsing: .unconditional, help: C.maxSteps.argumentHelp) var maxSteps: Int?
    @Option(name: C.checkpointEvery.long, parsing: .unconditional, help: C.checkpointEvery.argumentHelp) var checkpointEvery: Int?
    @Option(name: C.keepCheckpoints.long, parsing: .unconditional, help: C.keepCheckpoints.argumentHelp) var keepCheckpoints: Int?
    @Flag(name: C.noCheckpoints.long, help: C.noCheckpoints.argumentHelp) var noCheckpoints = false
    @Option(name: C.dumpWeights.long, help: C.dumpWeights.argumentHelp) var dumpWeights: String?
    @Flag(name: C.force.long, help: C.force.argumentHelp) var force = false

    func bind(_ b: inout SettingBinder) {
        b.setOptional(C.resume, resume)
        b.setOptional(C.maxSteps, maxSteps)
        b.setOptional(C.checkpointEvery, checkpointEvery)
        b.set(C.keepCheckpoints, keepCheckpoints)
        b.flag(C.noCheckpoints, noCheckpoints)
        b.setOptional(C.dumpWeights, dumpWeights)
        b.flag(C.force, force)
    }
}

/// How the ranks run and talk: shared by train, compare and bench.
struct ParallelFlags: SettingGroupFlags {
    @Flag(name: C.simulate.long, help: C.simulate.argumentHelp) var simulate = false
    @Option(name: C.replicas.long, parsing: .unconditional, help: C.replicas.argumentHelp) var replicas: Int?
    @Option(name: C.replicaLayout.long, help: C.replicaLayout.argumentHelp) var replicaLayout: ReplicaLayoutKind?
    @Option(name: C.collectiveTimeout.long, parsing: .unconditional, help: C.collectiveTimeout.argumentHelp) var collectiveTimeout: Double?
    @Option(name: C.bucketMiB.long, parsing: .unconditional, help: C.bucketMiB.argumentHelp) var bucketMib: Double?
    @Option(name: C.progress.long, help: C.progress.argumentHelp) var progress: GradientOverlap.Progress?
    @Option(name: C.threads.long, parsing: .unconditional, help: C.threads.argumentHelp) var threads: Int?

    func bind(_ b: inout SettingBinder) {
        b.flag(C.simulate, simulate)
        b.setOptional(C.replicas, replicas)
        b.setOptional(C.replicaLayout, replicaLayout)
        b.set(C.collectiveTimeout, collectiveTimeout)
        b.set(C.bucketMiB, bucketMib)
        b.set(C.progress, progress)
        b.set(C.threads, threads)
    }

    func validate() throws {
        // The value as given: the options keep it as whole floats, in which -1, nan and 1e-9 are all 0.
        if let bucketMib, let problem = C.bucketMiB.refusal(of: bucketMib) { throw ValidationError("\(C.bucketMiB.flag) \(problem)") }
    }
}

/// The settings of a training run, in `train --help`'s titled groups (train and compare).
struct TrainingFlags: ParsableArguments {
    @OptionGroup(title: SettingGroup.data.rawValue) var dataFlags: DataFlags
    @OptionGroup(title: SettingGroup.model.rawValue) var modelFlags: ModelFlags
    @OptionGroup(title: SettingGroup.optimiser.rawValue) var optimiserFlags: OptimiserFlags
    @OptionGroup(title: SettingGroup.run.rawValue) var runFlags: RunFlags
    @OptionGroup(title: SettingGroup.parallelism.rawValue) var parallelFlags: ParallelFlags

    var modelOptions: ModelOptions { modelFlags.kind }

    /// The groups' settings bound, with `extra` groups of the command's own.
    func binder(_ extra: [any SettingGroupFlags] = []) -> SettingBinder {
        var b = SettingBinder()
        for group in [dataFlags, modelFlags, optimiserFlags, runFlags, parallelFlags] as [any SettingGroupFlags] + extra { group.bind(&b) }
        // When resuming, a setting not given is the checkpoint's (ResumeState.applied).
        (b.options.epochsGiven, b.options.dataDirectoryGiven) = (b.given.contains(C.epochs.name), b.given.contains(C.dataDirectory.name))
        return b
    }

    var options: TrainingOptions { binder().options }

    /// The ranges (shared with the checkpoint manifest's reader) and the launch's rules.
    /// `resumable`: whether --resume is among the options (train's); on --resume the batch is the
    /// checkpoint's (a different one is refused), checked once it is read.
    static func check(_ options: TrainingOptions, resumable: Bool = true) throws {
        if let problem = SettingRules.problem(in: options) { throw ValidationError(problem.forCommandLine) }
        try Launcher(options).check(model: options.model, batchSize: resumable && options.resume == nil ? options.batchSize : nil)
    }

    /// The group alone does not know whether a --resume came with it: the command checks the batch.
    func validate() throws { try Self.check(options, resumable: false) }

    /// The job as memory admission sees it, with the batch and data these options ask for.
    static func memoryJob(_ options: TrainingOptions) -> MemoryJob {
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
