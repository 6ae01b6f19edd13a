import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import Foundation

/// One training run on the ranks that hold the towers. Built once (the network, the data side,
/// the checkpoint it resumes from), it then trains epoch by epoch: `step` after `step`, each
/// epoch closed by `endEpoch`, with a `checkpoint` wherever one is due.
final class TrainingRun {
    let options: TrainingOptions
    let plan: NetworkPlan
    let session: Session
    let network: Network
    let replicas: ReplicaTraining
    private let coordinator: Coordinator?
    private let metrics: MetricsLog?
    private let runDirectory: String
    private let reporter: Reporter
    /// The coordinator's input statistics, written with every checkpoint.
    private let statisticsFile: Data?
    /// How each convolution computes, chosen once (or taken from the resumed checkpoint) and
    /// recorded in every checkpoint, so that a resume computes the same bits.
    private let convolutionPlan: ConvolutionPlan
    /// Images per global step, steps per epoch, and steps in all.
    let batchSize: Int, stepsPerEpoch: Int, totalSteps: Int
    /// Where training starts: a fresh run at step 0 of epoch 1, a resumed one where it stood.
    private(set) var start = (epoch: 1, step: 0)
    private(set) var result: RunResult
    private(set) var schedule: LearningRateSchedule
    private var sgd: SGD
    private var epoch = RunningMean(), window = RunningMean()
    private var clock = (started: 0.0, epochStart: 0.0, windowStart: 0.0, stepsAtStart: 0)
    private var trained = (seconds: 0.0, images: 0)

    /// Builds the run over `towers` (the ranks that hold the model). `statistics` are the
    /// resumed checkpoint's, on the coordinator.
    init(_ options: TrainingOptions, plan: NetworkPlan, session: Session, towers comm: Communicator, metrics: MetricsLog?,
         launch: String, runDirectory: String, resume: ResumeState?, statistics: InputStatistics?) throws {
        self.options = options
        self.plan = plan
        self.session = session
        self.metrics = metrics
        self.runDirectory = runDirectory
        reporter = session.reporter
        // Replicas: the towers meet on their pair, each replica computes its share of the batch.
        let layout = ReplicaLayout(world: comm, towers: plan.towers, kind: options.replicaLayout)
        var model = RankContext.Model(plan: plan, maxBatch: min(options.batchSize / layout.replicas, session.trainCount),
                                      seed: options.seed, initialization: options.initialization,
                                      algorithms: options.convolutionAlgorithm, stored: resume?.manifest.convolutionAlgorithms,
                                      threadsAlone: options.threadsForOneTower)
        model.hybrid = layout.hybrid
        let context = try RankContext(model, pair: layout.pair, world: comm, reporter: session.reporter) { network in
            session.data.map {
                Coordinator(data: $0, input: plan.spec.input, layout: session.layout, settings: options.data, seed: options.seed,
                            restored: statistics, maxBatch: network.maxBatch)
            }
        }
        let (network, coordinator) = (context.network, context.coordinator)
        convolutionPlan = context.convolutionPlan
        let statisticsFile = coordinator?.statistics.encoded()
        if let statisticsFile { try? AtomicFile.write(statisticsFile, to: "\(runDirectory)/\(InputStatistics.fileName)") }
        self.statisticsFile = statisticsFile
        replicas = ReplicaTraining(layout: layout, network: network, coordinator: coordinator, batchSize: options.batchSize,
                                   data: session.layout, overlap: options.overlap)
        self.network = network
        self.coordinator = coordinator
        batchSize = min(options.batchSize, session.trainCount)
        stepsPerEpoch = (session.trainCount + batchSize - 1) / batchSize
        totalSteps = min(options.epochs * stepsPerEpoch, options.maxSteps ?? Int.max)
        let summary = try ModelSummary(plan: plan)
        result = RunResult(model: plan.model, seed: options.seed, launch: launch,
                           parameters: summary.parametersTotal, forwardFLOPs: summary.flopsTotal)
        schedule = options.initialSchedule
        sgd = SGD(learningRate: schedule.rate, momentum: options.momentum, weightDecay: options.weightDecay)
        announce(launch: launch)
        if let resume { try restore(resume, comm: comm) }
        // What a second Ctrl-C names: the checkpoint resumed from, until a new one is written.
        if reporter.speaks { StopRequest.noteLastCheckpoint(resume?.path, run: runDirectory) }
    }

    private func announce(launch: String) {
        reporter.say("training \(plan.spec.name)/\(plan.model.rawValue) on \(session.data?.name ?? "") (\(session.trainCount) train, \(session.testCount) test images, \(session.classes) classes), \(launch)")
        reporter.say(Trainer.describe(session.layout, settings: options.data, input: plan.spec.input))
        if let note = Trainer.Evaluation.topNote(classes: plan.classes) { reporter.say(note) }
        reporter.say("batch \(options.batchSize), lr \(options.learningRate), momentum \(options.momentum), weight decay \(options.weightDecay), seed \(options.seed), \((options.initialization ?? plan.spec.initialization).rawValue) init")
    }

    /// Loads the checkpoint's weights and momenta, and takes up its schedule, history and place.
    private func restore(_ resume: ResumeState, comm: Communicator) throws {
        try Restore.load(resume.path, manifest: resume.manifest, into: network, comm: comm, reporter: reporter)
        let m = resume.manifest
        schedule = m.learningRateSchedule
        sgd.learningRate = schedule.rate
        result.steps = m.step
        result.epochs = m.history
        start = (m.epoch, m.stepInEpoch)
        reporter.say("resumed from \(resume.path): epoch \(m.epoch), step \(m.step), \(schedule.summary)")
        if start.epoch > options.epochs {
            reporter.say("the checkpoint has finished all \(options.epochs) epochs; pass a larger --epochs to train further")
        }
    }

    /// Trains until the last epoch, `--max-steps`, or a stop request.
    func train() throws -> RunResult {
        clock.started = now()
        clock.stepsAtStart = result.steps
        epochs: for e in start.epoch...max(start.epoch, options.epochs) where e <= options.epochs && result.steps < totalSteps {
            beginEpoch(e)
            for s in (e == start.epoch ? start.step : 0)..<stepsPerEpoch where result.steps < totalSteps {
                guard try step(epoch: e, index: s) else { break epochs }
            }
            guard try endEpoch(e) else { break }
        }
        return try finish()
    }

    private func beginEpoch(_ e: Int) {
        coordinator?.shuffle(epoch: e)
        sgd.learningRate = schedule.rate
        epoch = RunningMean()
        window = RunningMean()
        clock.epochStart = now()
        clock.windowStart = clock.epochStart
    }

    /// Step `s` of epoch `e`: hand out the batch, forward and backward, update the weights,
    /// log, and checkpoint if due. False when the run was asked to stop (after a checkpoint).
    func step(epoch e: Int, index s: Int) throws -> Bool {
        let first = s * batchSize, n = min(batchSize, session.trainCount - first)
        guard let share = replicas.handOut(first..<(first + n), next: batch(s + 1, ahead: 1), following: batch(s + 2, ahead: 2)) else {
            result.interrupted = true
            try checkpoint(epoch: e, stepInEpoch: s)
            return false
        }
        let (loss, correct) = replicas.step(share, step: result.steps, seed: options.seed)
        guard loss.isFinite else {
            reporter.fail("the loss became \(loss.isNaN ? "NaN" : "infinite") at step \(result.steps + 1) (epoch \(e)); training stopped and the last checkpoint was kept. Lower --lr (now \(schedule.rate))")
            throw TrainingError.reported(.diverged)
        }
        sgd.update(network.arena)
        result.steps += 1
        epoch.add(meanLoss: loss, correct: correct, images: n)
        window.add(meanLoss: loss, correct: correct, images: n)
        if result.steps % options.logEvery == 0 || s == stepsPerEpoch - 1 || result.steps == totalSteps { logWindow(epoch: e, index: s) }
        if let every = options.checkpointEvery, every > 0, result.steps % every == 0, s + 1 < stepsPerEpoch {
            try checkpoint(epoch: e, stepInEpoch: s + 1)
        }
        return true
    }

    /// The images of step `s` of this epoch, `ahead` steps from now, if the run gets there.
    private func batch(_ s: Int, ahead: Int) -> Range<Int>? {
        guard s < stepsPerEpoch && result.steps + ahead < totalSteps else { return nil }
        return (s * batchSize)..<min((s + 1) * batchSize, session.trainCount)
    }

    /// The progress line and metrics record of the steps since the last one.
    private func logWindow(epoch e: Int, index s: Int) {
        let elapsed = now() - clock.windowStart
        trained.seconds += elapsed
        trained.images += window.images
        let rate = Double(window.images) / max(elapsed, 1e-9)
        let eta = Double(totalSteps - result.steps) * (now() - clock.started) / Double(result.steps - clock.stepsAtStart)
        reporter.say(String(format: "epoch %ld/%ld  step %4ld/%ld  loss %.4f  train acc %5.1f%%  %6.1f img/s  ETA %@",
                            e, options.epochs, s + 1, stepsPerEpoch, window.loss, 100 * window.accuracy, rate, formatDuration(eta)))
        metrics?.record(["kind": "step", "epoch": e, "step": result.steps, "loss": window.loss, "train_accuracy": window.accuracy,
                         "images_per_second": rate, "lr": Double(schedule.rate)])
        window = RunningMean()
        clock.windowStart = now()
    }

    /// Tests on replica 0, records and reports the epoch, lets the schedule react, and writes
    /// the epoch's checkpoint. False when the run was asked to stop.
    func endEpoch(_ e: Int) throws -> Bool {
        guard let test = try replicas.evaluateOnFirstReplica({
            Trainer.evaluate(network: network, batch: replicas.batch, coordinator: coordinator, count: session.testCount,
                             transport: $0, seed: options.seed, tenCrop: options.data.tenCrop)
        }) else {
            result.interrupted = true
            try checkpoint(epoch: e, stepInEpoch: stepsPerEpoch)
            return false
        }
        let record = EpochResult(epoch: e, trainLoss: epoch.loss, trainAccuracy: epoch.accuracy, testLoss: test.loss,
                                 testTop1: test.top1, testTop5: test.top5, seconds: now() - clock.epochStart,
                                 dataOrder: coordinator?.orderChecksum ?? 0)
        result.epochs.append(record)
        reporter.say(String(format: "epoch %ld/%ld done in %@: train loss %.4f acc %.2f%% | test loss %.4f top-1 %.2f%% \(Trainer.Evaluation.topName(classes: plan.classes)) %.2f%% | %@",
                            e, options.epochs, formatDuration(record.seconds), record.trainLoss, 100 * record.trainAccuracy,
                            test.loss, 100 * test.top1, 100 * test.top5, schedule.summary))
        metrics?.record(["kind": "epoch", "epoch": e, "step": result.steps, "train_loss": record.trainLoss,
                         "train_accuracy": record.trainAccuracy, "test_loss": test.loss, "test_top1": test.top1,
                         "test_top5": test.top5, "seconds": record.seconds, "data_order": "\(record.dataOrder)",
                         "lr": Double(schedule.rate)])
        if session.isCoordinator { Trainer.writePlot(result, model: plan.model.rawValue, to: "\(runDirectory)/training.svg") }
        // The paper's rule reads the validation error; here the test set plays that part.
        if let change = schedule.endEpoch(e, validationError: 1 - test.top1) { reporter.say(change) }
        if result.steps < totalSteps || e == options.epochs { try checkpoint(epoch: e + 1, stepInEpoch: 0) }
        return true
    }

    /// A checkpoint of where training stands (the next step is `stepInEpoch` of `epoch`),
    /// written by replica 0's pair: twins hold the same weights.
    func checkpoint(epoch e: Int, stepInEpoch: Int) throws {
        guard options.checkpoints else { return }
        let manifest = manifest(epoch: e, stepInEpoch: stepInEpoch)
        let tensors = replicas.towerTensors(momentum: true)
        let path = try replicas.onFirstReplica {
            try Checkpoint.save(network: network, tensors: tensors!, manifest: manifest, run: runDirectory, keep: options.keepCheckpoints,
                                coordinatorFiles: statisticsFile.map { [InputStatistics.fileName: $0] } ?? [:],
                                comm: replicas.layout.pair, reporter: reporter)
        }
        if let path {
            reporter.say("checkpoint: \(path)")
            if reporter.speaks { StopRequest.noteLastCheckpoint(path, run: runDirectory) }
        }
    }

    private func manifest(epoch e: Int, stepInEpoch: Int) -> CheckpointManifest {
        var manifest = CheckpointManifest(
            preset: options.preset.rawValue, model: plan.model.rawValue, classes: plan.classes, towers: plan.towers,
            seed: options.seed, batchSize: options.batchSize, epochs: options.epochs, momentum: options.momentum,
            weightDecay: options.weightDecay, initialization: options.initialization?.rawValue, step: result.steps,
            epoch: e, stepInEpoch: stepInEpoch, schedule: CheckpointManifest.schedule(schedule), history: result.epochs,
            pixelMean: coordinator?.statistics.normalization?.mean, pixelStd: coordinator?.statistics.normalization?.std,
            classNames: session.data?.classNames, dataDirectory: options.dataDirectory, trainLimit: options.trainLimit,
            testLimit: options.testLimit, trainImages: session.trainCount, dataSettings: options.data, dataLayout: session.layout)
        manifest.convolutionAlgorithms = convolutionPlan
        manifest.replicaLayout = replicas.replicas > 1 ? replicas.layout.kind : nil
        return manifest
    }

    /// The run's totals, and the final weights when asked for (`--dump-weights`).
    private func finish() throws -> RunResult {
        result.seconds = now() - clock.started
        result.imagesPerSecond = Double(trained.images) / max(trained.seconds, 1e-9)
        if let prefix = options.dumpWeightsPrefix, !result.interrupted, let tensors = replicas.towerTensors(momentum: false) {
            try AtomicFile.write(SafeTensors.encode(tensors), to: "\(prefix)-tower\(network.firstTower).safetensors",
                                 replacing: options.replaceOutputs)
        }
        return result
    }
}
