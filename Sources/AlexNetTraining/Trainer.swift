import AlexNetCore
import AlexNetData
import Foundation

/// The training loop. Every rank runs it (SPMD); rank 0 is also the coordinator: it assembles
/// and broadcasts each batch, and owns every log line and file.
public enum Trainer {
    /// The `train` command: loads the data, trains, reports. Returns the exit code (the same on
    /// every rank).
    public static func run(_ options: TrainingOptions, communicator: Communicator, launch: String) -> Int32 {
        var options = options
        // Resuming reads the same data as the checkpoint did. Only rank 0 reads data, so only it
        // needs to know; a checkpoint it cannot read is reported, for every rank, in train().
        if communicator.rank == 0, let resume = options.resume, let manifest = try? Checkpoint.resolve(resume).manifest {
            if !options.dataDirectoryGiven, let directory = manifest.dataDirectory { options.dataDirectory = directory }
            options.trainLimit = manifest.trainLimit
            options.testLimit = manifest.testLimit
            if var settings = manifest.dataSettings {
                (settings.tenCrop, settings.prefetch) = (options.data.tenCrop, options.data.prefetch)
                options.data = settings
            }
            options.seed = manifest.seed
        }
        do {
            let session = try Session.open(directory: options.dataDirectory, trainLimit: options.trainLimit,
                                           testLimit: options.testLimit, settings: options.data, preset: options.preset,
                                           seed: options.seed, communicator: communicator)
            let directory = options.runDirectory ?? defaultRunDirectory(options)
            let result = try train(options, session: session, runDirectory: directory, launch: launch)
            guard session.isCoordinator else { return 0 }
            if let failure = StopRequest.failure {
                session.reporter.fail(failure + (options.checkpoints
                    ? "; the last checkpoint is kept: make room, then alexnet-split train --resume \(directory)" : ""))
                return 1
            }
            if result.interrupted {
                session.reporter.say("stopped after \(result.steps) steps at your request" + (options.checkpoints
                    ? "; a checkpoint was written. To continue: alexnet-split train --resume \(directory)" : ""))
                return 130
            }
            if let skipped = session.data?.skipped, !skipped.isEmpty {
                session.reporter.say("skipped \(skipped.count) unreadable image(s) (--skip-bad-images), listed in \(directory)/skipped-images.txt:")
                for why in skipped.prefix(20) { session.reporter.say("  \(why)") }
                if skipped.count > 20 { session.reporter.say("  ... and \(skipped.count - 20) more") }
            }
            if let final = result.final {
                session.reporter.say(String(format: "test accuracy %.2f%% (top-5 %.2f%%) after %ld steps in %@; metrics in %@/metrics.jsonl",
                                            100 * final.testTop1, 100 * final.testTop5, result.steps,
                                            formatDuration(result.seconds), directory))
            }
            return 0
        } catch {
            return Reporter(speaks: communicator.rank == 0).exitCode(for: error)
        }
    }

    /// Trains `options.model` with `options.seed` and writes its metrics to `runDirectory`.
    /// Every rank of the session calls it. Throws TrainingError (already reported by rank 0).
    public static func train(_ options: TrainingOptions, session: Session, runDirectory: String, launch: String) throws -> RunResult {
        let communicator = session.communicator
        let reporter = session.reporter
        var options = options
        var restored: (path: String, manifest: CheckpointManifest)?
        if let resume = options.resume {
            let found = try Restore.share(resume, classes: session.classes, comm: communicator, reporter: reporter)
            try Restore.check(found.manifest, path: found.path, options: options)
            // The checkpoint's own settings carry on; only the number of epochs may change.
            let m = found.manifest
            if let images = m.trainImages, images != session.trainCount {
                throw TrainingError("\(found.path) was trained on \(images) training images, but this data has \(session.trainCount); resume with the same --data", exitCode: 2)
            }
            options.seed = m.seed
            options.learningRate = m.learningRateSchedule.rate
            options.batchSize = m.batchSize
            options.momentum = m.momentum
            options.weightDecay = m.weightDecay
            if !options.epochsGiven { options.epochs = m.epochs }
            restored = found
        }
        let plan: NetworkPlan
        do {
            plan = try NetworkPlan(spec: session.layout.spec(options.preset, classes: session.classes), model: options.model)
        } catch {
            reporter.fail("\(error)")
            throw TrainingError.reported(exitCode: 2)
        }
        // Two ranks per replica of the split model, and a batch that splits over the replicas (ReplicaTraining.swift).
        if let problem = replicaProblem(plan: plan, ranks: communicator.size, options: options) {
            reporter.fail(problem)
            throw TrainingError.reported(exitCode: 2)
        }
        var metrics: MetricsLog?
        try session.onCoordinator {
            do {
                try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            } catch {
                throw TrainingError("cannot create run directory \(runDirectory): \((error as NSError).localizedDescription); pass a writable --run-dir")
            }
            metrics = try MetricsLog(directory: runDirectory)
            try writeConfig(options, session: session, launch: launch, to: runDirectory)
            if let skipped = session.data?.skipped, !skipped.isEmpty {
                try AtomicFile.write(Data(skipped.map { $0 + "\n" }.joined().utf8), to: "\(runDirectory)/skipped-images.txt")
            }
        }

        let (result, stopped) = try onTowerRanks(plan: plan, session: session, threads: options.threadsForOneTower, launch: launch,
                                                 stopped: { $0.interrupted }) { comm, how in
            try loop(options, plan: plan, session: session, towers: comm, metrics: metrics, launch: how,
                     runDirectory: runDirectory, restored: restored)
        }
        return result ?? RunResult(model: plan.model, seed: options.seed, interrupted: stopped)
    }

    /// Runs `body` over the ranks that hold the model's towers, with a communicator among them
    /// and a sentence saying how they run. The split model uses every rank. A one-tower model
    /// runs on rank 0 alone with every BLAS thread, while the other ranks sleep (not spin) until
    /// it is done; they then get nil and whether it was stopped, or the error it ended with.
    static func onTowerRanks<T>(plan: NetworkPlan, session: Session, threads: Int, launch: String, stopped: (T) -> Bool,
                                _ body: (Communicator, String) throws -> T) throws -> (value: T?, stopped: Bool) {
        let communicator = session.communicator
        guard plan.towers == 1 && communicator.size > 1 else {
            let value = try body(communicator, launch)
            return (value, stopped(value))
        }
        let alone = "rank 0 alone with \(threads) BLAS threads (the other \(communicator.size - 1) rank(s) sleep)"
        var status: [Int32] = [0, 0]  // exit code, stopped
        guard session.isCoordinator else {
            communicator.broadcastIdly(&status, root: 0)
            if status[0] != 0 { throw TrainingError.reported(exitCode: status[0]) }
            return (nil, status[1] != 0)
        }
        session.reporter.say("note: the \(plan.model.rawValue) model has one tower, so it runs on \(alone)")
        do {
            let value = try body(SingleProcessCommunicator(), alone)
            status[1] = stopped(value) ? 1 : 0
            communicator.broadcastIdly(&status, root: 0)
            return (value, stopped(value))
        } catch {
            status[0] = (error as? TrainingError)?.exitCode ?? 1
            communicator.broadcastIdly(&status, root: 0)
            throw error
        }
    }

    /// The epochs and steps themselves, over the ranks that hold the towers.
    static func loop(_ options: TrainingOptions, plan: NetworkPlan, session: Session, towers comm: Communicator,
                     metrics: MetricsLog?, launch: String, runDirectory: String,
                     restored: (path: String, manifest: CheckpointManifest)?) throws -> RunResult {
        let reporter = session.reporter
        BLAS.setThreads(comm.size == 1 && plan.towers == 1 ? options.threadsForOneTower : 1)
        // Replicas: the towers meet on their pair, each replica computes its share of the batch.
        let layout = ReplicaLayout(world: comm, towers: plan.towers)
        let network: Network
        do {
            network = try Network(plan: plan, communicator: layout.pair, maxBatch: min(options.batchSize / layout.replicas, session.trainCount),
                                  seed: options.seed, initialization: options.initialization)
        } catch {
            reporter.fail("\(error)")
            throw TrainingError.reported(exitCode: 2)
        }
        let coordinator = session.data.map {
            Coordinator(data: $0, input: plan.spec.input, layout: session.layout, settings: options.data, seed: options.seed,
                        restored: restored.flatMap { try? Checkpoint.statistics($0.path, manifest: $0.manifest) },
                        maxBatch: network.maxBatch)
        }
        let statisticsFile = coordinator?.statistics.encoded()
        if let statisticsFile { try? AtomicFile.write(statisticsFile, to: "\(runDirectory)/\(InputStatistics.fileName)") }
        let batch = min(options.batchSize, session.trainCount)
        let replicas = ReplicaTraining(layout: layout, network: network, coordinator: coordinator, batchSize: options.batchSize)

        let summary = ModelSummary(plan: plan, stages: try plan.stages(ranks: plan.towers))
        var result = RunResult(model: plan.model, seed: options.seed, launch: launch,
                               parameters: summary.parametersTotal, forwardFLOPs: summary.flopsTotal)
        reporter.say("training \(plan.spec.name)/\(plan.model.rawValue) on \(session.data?.name ?? "") (\(session.trainCount) train, \(session.testCount) test images, \(session.classes) classes), \(launch)")
        reporter.say(describe(session.layout, settings: options.data, input: plan.spec.input))
        reporter.say("batch \(options.batchSize), lr \(options.learningRate), momentum \(options.momentum), weight decay \(options.weightDecay), seed \(options.seed), \((options.initialization ?? plan.spec.initialization).rawValue) init")

        var schedule = options.initialSchedule
        var (firstEpoch, firstStep) = (1, 0)
        if reporter.speaks { StopRequest.noteLastCheckpoint(restored?.path, run: runDirectory) }
        if let restored {
            try Restore.load(restored.path, into: network, comm: comm, reporter: reporter)
            let m = restored.manifest
            schedule = m.learningRateSchedule
            result.steps = m.step
            result.epochs = m.history
            (firstEpoch, firstStep) = (m.epoch, m.stepInEpoch)
            reporter.say("resumed from \(restored.path): epoch \(m.epoch), step \(m.step), \(schedule.summary)")
        }
        var sgd = SGD(learningRate: schedule.rate, momentum: options.momentum, weightDecay: options.weightDecay)
        let trainCount = session.trainCount
        let stepsPerEpoch = (trainCount + batch - 1) / batch
        let totalSteps = min(options.epochs * stepsPerEpoch, options.maxSteps ?? Int.max)
        if firstEpoch > options.epochs {
            reporter.say("the checkpoint has finished all \(options.epochs) epochs; pass a larger --epochs to train further")
        }

        /// A checkpoint of where training stands: the next step is `stepInEpoch` of `epoch`.
        func checkpoint(epoch: Int, stepInEpoch: Int) throws {
            guard options.checkpoints else { return }
            let manifest = CheckpointManifest(
                preset: options.preset.rawValue, model: plan.model.rawValue, classes: plan.classes, towers: plan.towers,
                seed: options.seed, batchSize: options.batchSize, epochs: options.epochs, momentum: options.momentum,
                weightDecay: options.weightDecay, initialization: options.initialization?.rawValue, step: result.steps,
                epoch: epoch, stepInEpoch: stepInEpoch, schedule: CheckpointManifest.schedule(schedule), history: result.epochs,
                pixelMean: coordinator?.statistics.normalization?.mean, pixelStd: coordinator?.statistics.normalization?.std,
                classNames: session.data?.classNames, dataDirectory: options.dataDirectory, trainLimit: options.trainLimit,
                testLimit: options.testLimit, trainImages: session.trainCount, dataSettings: options.data, dataLayout: session.layout)
            // Twins hold the same weights: replica 0's pair writes the tower files.
            let path = try replicas.onFirstReplica {
                try Checkpoint.save(network: network, manifest: manifest, run: runDirectory, keep: options.keepCheckpoints,
                                    coordinatorFiles: statisticsFile.map { [InputStatistics.fileName: $0] } ?? [:],
                                    comm: layout.pair, reporter: reporter)
            }
            if let path {
                reporter.say("checkpoint: \(path)")
                if reporter.speaks { StopRequest.noteLastCheckpoint(path, run: runDirectory) }
            }
        }

        let started = now(), stepsAtStart = result.steps
        var trainingSeconds = 0.0, trainedImages = 0
        epochs: for epoch in firstEpoch...max(firstEpoch, options.epochs) where epoch <= options.epochs && result.steps < totalSteps {
            coordinator?.shuffle(epoch: epoch)
            sgd.learningRate = schedule.rate
            let epochStart = now()
            var (epochLoss, epochCorrect, epochSeen) = (0.0, 0, 0)
            var (windowLoss, windowCorrect, windowSeen, windowStart) = (0.0, 0, 0, now())
            for s in (epoch == firstEpoch ? firstStep : 0)..<stepsPerEpoch where result.steps < totalSteps {
                let first = s * batch, n = min(batch, trainCount - first)
                let next = s + 1 < stepsPerEpoch && result.steps + 1 < totalSteps ? (first + n)..<min(first + n + batch, trainCount) : nil
                guard let share = replicas.handOut(first..<(first + n), next: next) else {
                    result.interrupted = true
                    try checkpoint(epoch: epoch, stepInEpoch: s)
                    break epochs
                }
                let (loss, correct) = replicas.step(share, step: result.steps, seed: options.seed)
                guard loss.isFinite else {
                    reporter.fail("the loss became \(loss.isNaN ? "NaN" : "infinite") at step \(result.steps + 1) (epoch \(epoch)); training stopped and the last checkpoint was kept. Lower --lr (now \(schedule.rate))")
                    throw TrainingError.reported(exitCode: 3)
                }
                sgd.update(network.parameters)
                result.steps += 1
                epochLoss += loss * Double(n); epochCorrect += correct; epochSeen += n
                windowLoss += loss * Double(n); windowCorrect += correct; windowSeen += n
                if result.steps % options.logEvery == 0 || s == stepsPerEpoch - 1 || result.steps == totalSteps {
                    let elapsed = now() - windowStart
                    trainingSeconds += elapsed
                    trainedImages += windowSeen
                    let rate = Double(windowSeen) / max(elapsed, 1e-9)
                    let eta = Double(totalSteps - result.steps) * (now() - started) / Double(result.steps - stepsAtStart)
                    reporter.say(String(format: "epoch %ld/%ld  step %4ld/%ld  loss %.4f  train acc %5.1f%%  %6.1f img/s  ETA %@",
                                        epoch, options.epochs, s + 1, stepsPerEpoch, windowLoss / Double(windowSeen),
                                        100 * Double(windowCorrect) / Double(windowSeen), rate, formatDuration(eta)))
                    metrics?.record(["kind": "step", "epoch": epoch, "step": result.steps, "loss": windowLoss / Double(windowSeen),
                                     "train_accuracy": Double(windowCorrect) / Double(windowSeen), "images_per_second": rate,
                                     "lr": Double(schedule.rate)])
                    (windowLoss, windowCorrect, windowSeen, windowStart) = (0, 0, 0, now())
                }
                if options.checkpointEvery > 0 && result.steps % options.checkpointEvery == 0 && s + 1 < stepsPerEpoch {
                    try checkpoint(epoch: epoch, stepInEpoch: s + 1)
                }
            }
            guard let test = replicas.evaluateOnFirstReplica({
                evaluate(network: network, coordinator: coordinator, count: session.testCount, broadcast: $0, seed: options.seed,
                         tenCrop: options.data.tenCrop)
            }) else {
                result.interrupted = true
                try checkpoint(epoch: epoch, stepInEpoch: stepsPerEpoch)
                break
            }
            let record = EpochResult(epoch: epoch, trainLoss: epochLoss / Double(max(epochSeen, 1)),
                                     trainAccuracy: Double(epochCorrect) / Double(max(epochSeen, 1)), testLoss: test.loss,
                                     testTop1: test.top1, testTop5: test.top5, seconds: now() - epochStart,
                                     dataOrder: coordinator?.orderChecksum ?? 0)
            result.epochs.append(record)
            reporter.say(String(format: "epoch %ld/%ld done in %@: train loss %.4f acc %.2f%% | test loss %.4f top-1 %.2f%% top-5 %.2f%% | %@",
                                epoch, options.epochs, formatDuration(record.seconds), record.trainLoss, 100 * record.trainAccuracy,
                                test.loss, 100 * test.top1, 100 * test.top5, schedule.summary))
            metrics?.record(["kind": "epoch", "epoch": epoch, "step": result.steps, "train_loss": record.trainLoss,
                             "train_accuracy": record.trainAccuracy, "test_loss": test.loss, "test_top1": test.top1,
                             "test_top5": test.top5, "seconds": record.seconds, "data_order": "\(record.dataOrder)",
                             "lr": Double(schedule.rate)])
            if session.isCoordinator { writePlot(result, model: plan.model.rawValue, to: "\(runDirectory)/training.svg") }
            // The paper's rule reads the validation error; here the test set plays that part.
            if let change = schedule.endEpoch(epoch, validationError: 1 - test.top1) { reporter.say(change) }
            if result.steps < totalSteps || epoch == options.epochs { try checkpoint(epoch: epoch + 1, stepInEpoch: 0) }
        }
        result.seconds = now() - started
        result.imagesPerSecond = Double(trainedImages) / max(trainingSeconds, 1e-9)
        if let prefix = options.dumpWeightsPrefix, !result.interrupted, layout.replica == 0 {
            let tensors = network.parameters.map { SafeTensors.Tensor(name: $0.name, shape: $0.shape, values: $0.value.array) }
            try AtomicFile.write(SafeTensors.encode(tensors), to: "\(prefix)-tower\(network.firstTower).safetensors",
                                 replacing: options.replaceOutputs)
        }
        return result
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
        simulate(towers: options.model.towers, replicas: options.replicas ?? 1) { communicator, launch in
            run(options, communicator: communicator, launch: launch)
        }
    }

    /// Runs `body` on `towers * replicas` simulated ranks (or in this thread for one tower) and
    /// returns rank 0's exit code.
    public static func simulate(towers: Int, replicas: Int = 1, _ body: @escaping (Communicator, String) -> Int32) -> Int32 {
        guard towers > 1 else { return body(SingleProcessCommunicator(), "in one process") }
        let result = ExitCodeBox()
        let launch = replicas == 1 ? "\(towers) towers simulated as threads of one process"
            : "\(towers * replicas) ranks (\(replicas) replicas of the \(towers) towers) simulated as threads of one process"
        InProcessGroup(size: towers * replicas).run { communicator in
            let code = body(communicator, launch)
            if communicator.rank == 0 { result.set(code) }
        }
        return result.value
    }
}

/// Rank 0's exit code, handed back from its thread.
private final class ExitCodeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var code: Int32 = 0
    func set(_ value: Int32) { lock.withLock { code = value } }
    var value: Int32 { lock.withLock { code } }
}
