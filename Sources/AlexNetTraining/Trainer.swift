import AlexNetComm
import AlexNetCore
import AlexNetData
import Foundation

/// The `train` command. Every rank runs it (SPMD); rank 0 is also the coordinator: it assembles
/// each batch, and owns every log line and file. The epochs and steps are a `TrainingRun`.
public enum Trainer {
    /// The `train` command: resolves the checkpoint to resume from (once), loads the data,
    /// trains, reports. Returns the exit code (the same on every rank).
    public static func run(_ options: TrainingOptions, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        do {
            let resume = try options.resume.map { try ResumeState.resolve($0, options: options, comm: communicator, reporter: reporter) }
            let options = resume?.applied(to: options) ?? options
            let session = try Session.open(directory: options.dataDirectory, trainLimit: options.trainLimit,
                                           testLimit: options.testLimit, settings: options.data, preset: options.preset,
                                           seed: options.seed, communicator: communicator)
            let directory = options.runDirectory ?? defaultRunDirectory(options)
            let result = try train(options, session: session, runDirectory: directory, launch: launch, resume: resume)
            return session.isCoordinator ? finish(result, options: options, session: session, directory: directory) : ExitStatus.success.rawValue
        } catch {
            return reporter.exitCode(for: error)
        }
    }

    /// Rank 0's closing lines, and the exit code: `.stopped` when stopped at the user's request.
    static func finish(_ result: RunResult, options: TrainingOptions, session: Session, directory: String) -> Int32 {
        let reporter = session.reporter
        if let failure = StopRequest.failure {
            reporter.fail(failure + (options.checkpoints
                ? "; the last checkpoint is kept: make room, then alexnet-split train --resume \(directory)" : ""))
            return ExitStatus.failure.rawValue
        }
        if result.interrupted {
            reporter.say("stopped after \(result.steps) steps at your request" + (options.checkpoints
                ? "; a checkpoint was written. To continue: alexnet-split train --resume \(directory)" : ""))
            return ExitStatus.stopped.rawValue
        }
        if let skipped = session.data?.skipped, !skipped.isEmpty {
            reporter.say("skipped \(skipped.count) unreadable image(s) (--skip-bad-images), listed in \(directory)/skipped-images.txt:")
            for why in skipped.prefix(20) { reporter.say("  \(why)") }
            if skipped.count > 20 { reporter.say("  ... and \(skipped.count - 20) more") }
        }
        if let final = result.final {
            reporter.say(String(format: "test accuracy %.2f%% (\(Evaluation.topName(classes: session.classes)) %.2f%%) after %ld steps in %@; metrics in %@/metrics.jsonl",
                                100 * final.testTop1, 100 * final.testTop5, result.steps, formatDuration(result.seconds), directory))
        }
        return ExitStatus.success.rawValue
    }

    /// Trains `options.model` with `options.seed` and writes its metrics to `runDirectory`,
    /// continuing `resume` if given (`options` already carry its settings: `ResumeState.applied`).
    /// Every rank of the session calls it. Throws TrainingError (already reported by rank 0).
    public static func train(_ options: TrainingOptions, session: Session, runDirectory: String, launch: String,
                             resume: ResumeState? = nil) throws -> RunResult {
        try resume?.check(session)
        let plan = try makePlan(options, session: session)
        var metrics: MetricsLog?
        try session.onCoordinator { metrics = try prepare(runDirectory, options: options, session: session, launch: launch) }
        let statistics = try resume?.statistics(session)
        let (result, stopped) = try onTowerRanks(plan: plan, session: session, threads: options.threadsForOneTower, launch: launch,
                                                 stopped: { $0.interrupted }) { comm, how in
            try TrainingRun(options, plan: plan, session: session, towers: comm, metrics: metrics, launch: how,
                            runDirectory: runDirectory, resume: resume, statistics: statistics).train()
        }
        return result ?? RunResult(model: plan.model, seed: options.seed, interrupted: stopped)
    }

    /// The model's plan, checked against the ranks: two per replica of the split model, and a
    /// batch that splits over the replicas (`RunConfiguration.rankProblem`). Every rank stops alike.
    static func makePlan(_ options: TrainingOptions, session: Session) throws -> NetworkPlan {
        do {
            let plan = try NetworkPlan(spec: session.layout.spec(options.preset, classes: session.classes), model: options.model)
            if let problem = RunConfiguration.rankProblem(model: plan.model, towers: plan.towers, ranks: session.communicator.size,
                                                         replicas: options.replicas, batchSize: options.batchSize,
                                                         fromCheckpoint: options.resume != nil) {
                throw TrainingError(problem)
            }
            return plan
        } catch {
            session.reporter.fail("\(error)")
            throw TrainingError.reported(.modelCannotRun)
        }
    }

    /// Rank 0 creates the run directory and writes its config; returns the metrics log.
    static func prepare(_ runDirectory: String, options: TrainingOptions, session: Session, launch: String) throws -> MetricsLog {
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("cannot create run directory \(runDirectory): \((error as NSError).localizedDescription); pass a writable --run-dir")
        }
        let metrics = try MetricsLog(directory: runDirectory)
        try writeConfig(options, session: session, launch: launch, to: runDirectory)
        if let skipped = session.data?.skipped, !skipped.isEmpty {
            try AtomicFile.write(Data(skipped.map { $0 + "\n" }.joined().utf8), to: "\(runDirectory)/skipped-images.txt")
        }
        return metrics
    }

    /// Runs `body` over the ranks that hold the model's towers, with a communicator among them
    /// and a sentence saying how they run. The split model uses every rank. A one-tower model
    /// runs on rank 0 alone with every BLAS thread, while the other ranks sleep (not spin) until
    /// it is done; they then get nil and whether it was stopped, or the error it ended with.
    public static func onTowerRanks<T>(plan: NetworkPlan, session: Session, threads: Int, launch: String, stopped: (T) -> Bool,
                                _ body: (Communicator, String) throws -> T) throws -> (value: T?, stopped: Bool) {
        let communicator = session.communicator
        guard plan.towers == 1 && communicator.size > 1 else {
            let value = try body(communicator, launch)
            return (value, stopped(value))
        }
        let alone = "rank 0 alone with \(threads) BLAS threads (the other \(communicator.size - 1) rank(s) sleep)"
        guard session.isCoordinator else {
            return (nil, try communicator.agree(nil as Result<Bool, Error>?, decider: 0, idly: true))
        }
        session.reporter.say("note: the \(plan.model.rawValue) model has one tower, so it runs on \(alone)")
        let outcome = Result { try body(SingleProcessCommunicator(), alone) }
        let wasStopped = try communicator.agree(outcome.map(stopped), decider: 0, idly: true)
        return (try outcome.get(), wasStopped)
    }

    /// training.svg: train loss and test accuracy per epoch, redrawn after every epoch.
    static func writePlot(_ result: RunResult, model: String, to path: String) {
        let plot = LinePlot(panels: [
            LinePlot.Panel(title: "train loss", series: [(model, result.epochs.map { (Double($0.epoch), $0.trainLoss) })]),
            LinePlot.Panel(title: "test top-1 accuracy (%)", series: [(model, result.epochs.map { (Double($0.epoch), 100 * $0.testTop1) })]),
        ], xLabel: "epoch")
        try? AtomicFile.write(Data(plot.svg.utf8), to: path)
    }

    /// One line on how inputs are made.
    static func describe(_ layout: DataLayout, settings: DataSettings, input: Shape) -> String {
        let kind = layout.channels == 3 ? "colour" : "grey"
        switch layout.preprocessing {
        case .resize:
            return "data: \(layout.format.rawValue), \(kind); inputs resized to \(input) and normalised (--preprocess resize)"
        case .paper:
            let a = settings.augmentation
            var steps = [a.randomCrop ? "random \(input.height)x\(input.width) crops" : "centre crops"]
            if a.mirror { steps.append("mirrors") }
            if a.colourNoise > 0 { steps.append("PCA colour noise \(a.colourNoise)") }
            return "data: \(layout.format.rawValue), \(kind), stored as \(layout.imageSize)x\(layout.imageSize); \(settings.meanKind.rawValue) mean subtracted; training on \(steps.joined(separator: ", ")); testing on \(settings.tenCrop ? "10 patches" : "the centre crop")"
        }
    }

    /// `runs/<preset>-<model>-<yyyyMMdd-HHmmss>`.
    public static func defaultRunDirectory(_ options: TrainingOptions, kind: String? = nil) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(options.preset.rawValue)-\(kind ?? options.model.rawValue)-\(formatter.string(from: Date()))"
    }

    /// config.json: what the run was started with, written by JSONEncoder (a class name with a
    /// quote or a newline stays valid JSON).
    struct Config: Encodable {
        var preset: String, model: String, epochs: Int, batchSize: Int, lr: Float, momentum: Float, weightDecay: Float
        var seed: UInt64, data: String, trainImages: Int, testImages: Int, launch: String, classNames: [String]
    }

    static func writeConfig(_ options: TrainingOptions, session: Session, launch: String, to directory: String) throws {
        guard access(directory, W_OK) == 0 else { throw TrainingError("run directory \(directory) is not writable; pass a writable --run-dir") }
        let config = Config(preset: options.preset.rawValue, model: options.model.rawValue, epochs: options.epochs,
                            batchSize: options.batchSize, lr: options.learningRate, momentum: options.momentum,
                            weightDecay: options.weightDecay, seed: options.seed, data: options.dataDirectory,
                            trainImages: session.trainCount, testImages: session.testCount, launch: launch,
                            classNames: session.data?.classNames ?? [])
        try AtomicFile.write(Data((JSONText.encode(config) + "\n").utf8), to: (directory as NSString).appendingPathComponent("config.json"))
    }

    /// Runs every rank as a thread of this process: the simulation mode.
    public static func runSimulated(_ options: TrainingOptions) -> Int32 {
        Simulation.run(towers: options.model.towers, replicas: options.replicas ?? 1) { communicator, launch in
            run(options, communicator: communicator, launch: launch)
        }
    }
}

/// Every rank of a job as a thread of this process (`--simulate`), and the sentences that say
/// how a job's ranks run.
public enum Simulation {
    /// Runs `body` on `towers * replicas` simulated ranks (or in this thread for one tower) and
    /// returns rank 0's value.
    public static func run<Value: Sendable>(towers: Int, replicas: Int = 1,
                                            _ body: @escaping @Sendable (Communicator, String) -> Value) -> Value {
        guard towers > 1 else { return body(SingleProcessCommunicator(), "in one process") }
        let launch = replicas == 1 ? "\(towers) towers simulated as threads of one process"
            : "\(towers * replicas) ranks (\(replicas) replicas of the \(towers) towers) simulated as threads of one process"
        return InProcessGroup(size: towers * replicas).collect { body($0, launch) }[0]
    }

    /// How `size` MPI ranks hold a model of `towers` towers.
    public static func describe(mpiRanks size: Int, towers: Int) -> String {
        towers > 1 && size > towers && size % towers == 0
            ? "\(size) MPI ranks: \(size / towers) replicas of the \(towers) towers, one tower per rank"
            : "\(size) MPI ranks, one tower each"
    }
}
