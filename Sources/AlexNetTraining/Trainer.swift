import AlexNetCore
import AlexNetData
import Foundation

/// The training loop. Every rank runs it (SPMD); rank 0 is also the coordinator: it assembles
/// and broadcasts each batch, and owns every log line and file.
public enum Trainer {
    /// The `train` command: loads the data, trains, reports. Returns the exit code (the same on
    /// every rank).
    public static func run(_ options: TrainingOptions, communicator: Communicator, launch: String) -> Int32 {
        do {
            let session = try Session.open(directory: options.dataDirectory, trainLimit: options.trainLimit,
                                           testLimit: options.testLimit, communicator: communicator)
            let directory = options.runDirectory ?? defaultRunDirectory(options)
            let result = try train(options, session: session, runDirectory: directory, launch: launch)
            guard session.isCoordinator else { return 0 }
            if result.interrupted {
                session.reporter.say("stopped after \(result.steps) steps at your request; metrics so far in \(directory)/metrics.jsonl")
                return 130
            }
            if let final = result.final {
                session.reporter.say(String(format: "test accuracy %.2f%% (top-5 %.2f%%) after %d steps in %@; metrics in %@/metrics.jsonl",
                                            100 * final.testTop1, 100 * final.testTop5, result.steps,
                                            formatDuration(result.seconds), directory))
            }
            return 0
        } catch let error as TrainingError {
            if !error.alreadyReported { Reporter(speaks: communicator.rank == 0).fail(error.description) }
            return error.exitCode
        } catch {
            Reporter(speaks: communicator.rank == 0).fail("\(error)")
            return 1
        }
    }

    /// Trains `options.model` with `options.seed` and writes its metrics to `runDirectory`.
    /// Every rank of the session calls it. Throws TrainingError (already reported by rank 0).
    public static func train(_ options: TrainingOptions, session: Session, runDirectory: String, launch: String) throws -> RunResult {
        let communicator = session.communicator
        let reporter = session.reporter
        let plan: NetworkPlan
        do {
            plan = try NetworkPlan(spec: options.preset.spec(classes: session.classes), model: options.model)
        } catch {
            reporter.fail("\(error)")
            throw TrainingError.reported(exitCode: 2)
        }
        if plan.towers > 1 && plan.towers != communicator.size {
            reporter.fail("the \(plan.model.rawValue) model has \(plan.towers) towers, one per rank, but this run has \(communicator.size) rank(s): use `mpirun -np \(plan.towers)`, or --simulate to run both towers in one process")
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
        }

        guard plan.towers == 1 && communicator.size > 1 else {
            return try loop(options, plan: plan, session: session, towers: communicator, metrics: metrics, launch: launch,
                            plot: "\(runDirectory)/training.svg")
        }
        // A one-tower model does not split: rank 0 trains it alone with every BLAS thread, and
        // the other ranks sleep (not spin) until it is done.
        let alone = "rank 0 alone with \(options.threadsForOneTower) BLAS threads (the other \(communicator.size - 1) rank(s) sleep)"
        var status: [Int32] = [0, 0]  // exit code, interrupted
        guard session.isCoordinator else {
            communicator.broadcastIdly(&status, root: 0)
            if status[0] != 0 { throw TrainingError.reported(exitCode: status[0]) }
            return RunResult(model: plan.model, seed: options.seed, interrupted: status[1] != 0, launch: alone)
        }
        reporter.say("note: the \(plan.model.rawValue) model has one tower, so it runs on \(alone)")
        do {
            let result = try loop(options, plan: plan, session: session, towers: SingleProcessCommunicator(), metrics: metrics,
                                  launch: alone, plot: "\(runDirectory)/training.svg")
            status[1] = result.interrupted ? 1 : 0
            communicator.broadcastIdly(&status, root: 0)
            return result
        } catch let error as TrainingError {
            status[0] = error.exitCode
            communicator.broadcastIdly(&status, root: 0)
            throw error
        }
    }

    /// The epochs and steps themselves, over the ranks that hold the towers.
    static func loop(_ options: TrainingOptions, plan: NetworkPlan, session: Session, towers comm: Communicator,
                     metrics: MetricsLog?, launch: String, plot: String) throws -> RunResult {
        let reporter = session.reporter
        BLAS.setThreads(comm.size == 1 && plan.towers == 1 ? options.threadsForOneTower : 1)
        let network: Network
        do {
            network = try Network(plan: plan, communicator: comm, maxBatch: min(options.batchSize, session.trainCount),
                                  seed: options.seed, initialization: options.initialization)
        } catch {
            reporter.fail("\(error)")
            throw TrainingError.reported(exitCode: 2)
        }
        let coordinator = session.data.map { Coordinator(data: $0, input: plan.spec.input, seed: options.seed) }
        let inputSize = plan.spec.input.size
        let batch = network.maxBatch
        var control: [Int32] = [0]  // 1: stop after this step boundary

        /// Broadcasts the stop decision and the `n`-image batch that the coordinator assembled.
        /// Returns false when the coordinator asks every rank to stop.
        func broadcastBatch(_ n: Int) -> Bool {
            control[0] = StopRequest.isRequested ? 1 : 0
            comm.broadcast(&control, root: 0)
            if control[0] != 0 { return false }
            comm.broadcast(UnsafeMutableRawBufferPointer(start: network.input.pointer, count: n * inputSize * 4), root: 0)
            network.labels.withUnsafeMutableBytes { comm.broadcast(UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * 4)]), root: 0) }
            return true
        }

        let summary = ModelSummary(plan: plan, stages: try plan.stages(ranks: plan.towers))
        var result = RunResult(model: plan.model, seed: options.seed, launch: launch,
                               parameters: summary.parametersTotal, forwardFLOPs: summary.flopsTotal)
        reporter.say("training \(plan.spec.name)/\(plan.model.rawValue) on \(session.data?.name ?? "") (\(session.trainCount) train, \(session.testCount) test images, \(session.classes) classes), \(launch)")
        reporter.say("batch \(options.batchSize), lr \(options.learningRate), momentum \(options.momentum), weight decay \(options.weightDecay), seed \(options.seed), \((options.initialization ?? plan.spec.initialization).rawValue) init")

        let sgd = SGD(learningRate: options.learningRate, momentum: options.momentum, weightDecay: options.weightDecay)
        let trainCount = session.trainCount
        let stepsPerEpoch = (trainCount + batch - 1) / batch
        let totalSteps = min(options.epochs * stepsPerEpoch, options.maxSteps ?? Int.max)
        let started = now()
        var trainingSeconds = 0.0, trainedImages = 0
        epochs: for epoch in 1...options.epochs where result.steps < totalSteps {
            coordinator?.shuffle(epoch: epoch)
            let epochStart = now()
            var (epochLoss, epochCorrect, epochSeen) = (0.0, 0, 0)
            var (windowLoss, windowCorrect, windowSeen, windowStart) = (0.0, 0, 0, now())
            for s in 0..<stepsPerEpoch where result.steps < totalSteps {
                let first = s * batch, n = min(batch, trainCount - first)
                coordinator?.assembleTraining(first..<(first + n), into: network)
                guard broadcastBatch(n) else {
                    result.interrupted = true
                    break epochs
                }
                let (loss, correct) = network.run(batch: n, context: StepContext(training: true, step: result.steps, seed: options.seed))
                guard loss.isFinite else {
                    reporter.fail("the loss became \(loss) at step \(result.steps + 1) (epoch \(epoch)); training stopped. Lower --lr (now \(options.learningRate))")
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
                    let eta = Double(totalSteps - result.steps) * (now() - started) / Double(result.steps)
                    reporter.say(String(format: "epoch %d/%d  step %4d/%d  loss %.4f  train acc %5.1f%%  %6.1f img/s  ETA %@",
                                        epoch, options.epochs, s + 1, stepsPerEpoch, windowLoss / Double(windowSeen),
                                        100 * Double(windowCorrect) / Double(windowSeen), rate, formatDuration(eta)))
                    metrics?.record(["kind": "step", "epoch": epoch, "step": result.steps, "loss": windowLoss / Double(windowSeen),
                                     "train_accuracy": Double(windowCorrect) / Double(windowSeen), "images_per_second": rate])
                    (windowLoss, windowCorrect, windowSeen, windowStart) = (0, 0, 0, now())
                }
            }
            guard let test = evaluate(network: network, coordinator: coordinator, count: session.testCount, broadcast: broadcastBatch,
                                      seed: options.seed) else {
                result.interrupted = true
                break
            }
            let record = EpochResult(epoch: epoch, trainLoss: epochLoss / Double(epochSeen),
                                     trainAccuracy: Double(epochCorrect) / Double(epochSeen), testLoss: test.loss,
                                     testTop1: test.top1, testTop5: test.top5, seconds: now() - epochStart,
                                     dataOrder: coordinator?.orderChecksum ?? 0)
            result.epochs.append(record)
            reporter.say(String(format: "epoch %d/%d done in %@: train loss %.4f acc %.2f%% | test loss %.4f top-1 %.2f%% top-5 %.2f%%",
                                epoch, options.epochs, formatDuration(record.seconds), record.trainLoss, 100 * record.trainAccuracy,
                                test.loss, 100 * test.top1, 100 * test.top5))
            metrics?.record(["kind": "epoch", "epoch": epoch, "step": result.steps, "train_loss": record.trainLoss,
                             "train_accuracy": record.trainAccuracy, "test_loss": test.loss, "test_top1": test.top1,
                             "test_top5": test.top5, "seconds": record.seconds, "data_order": "\(record.dataOrder)"])
            if session.isCoordinator { writePlot(result, model: plan.model.rawValue, to: plot) }
        }
        result.seconds = now() - started
        result.imagesPerSecond = Double(trainedImages) / max(trainingSeconds, 1e-9)
        if let prefix = options.dumpWeightsPrefix, !result.interrupted {
            let tensors = network.parameters.map { SafeTensors.Tensor(name: $0.name, shape: $0.shape, values: $0.value.array) }
            try AtomicFile.write(SafeTensors.encode(tensors), to: "\(prefix)-tower\(network.firstTower).safetensors")
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

    struct Evaluation {
        var loss: Double, top1: Double, top5: Double
    }

    /// Test loss, top-1 and top-5 over `count` test images (no dropout); meaningful on rank 0.
    /// Nil when a stop was requested.
    static func evaluate(network: Network, coordinator: Coordinator?, count: Int, broadcast: (Int) -> Bool, seed: UInt64) -> Evaluation? {
        var (loss, top1, top5) = (0.0, 0, 0)
        let classes = network.plan.classes
        for first in stride(from: 0, to: count, by: network.maxBatch) {
            let n = min(network.maxBatch, count - first)
            coordinator?.assembleTest(first..<(first + n), into: network)
            guard broadcast(n) else { return nil }
            let result = network.run(batch: n, context: StepContext(training: false, step: 0, seed: seed))
            loss += result.loss * Double(n)
            top1 += result.correct
            for b in 0..<n where topClasses(logits: network.logits, classes: classes, batch: n, sample: b, k: 5).contains(Int(network.labels[b])) {
                top5 += 1
            }
        }
        let total = Double(max(count, 1))
        return Evaluation(loss: loss / total, top1: Double(top1) / total, top5: Double(top5) / total)
    }

    /// `runs/<preset>-<model>-<yyyyMMdd-HHmmss>`.
    public static func defaultRunDirectory(_ options: TrainingOptions, kind: String? = nil) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(options.preset.rawValue)-\(kind ?? options.model.rawValue)-\(formatter.string(from: Date()))"
    }

    static func writeConfig(_ options: TrainingOptions, session: Session, launch: String, to directory: String) throws {
        guard access(directory, W_OK) == 0 else { throw TrainingError("run directory \(directory) is not writable; pass a writable --run-dir") }
        let names = session.data?.classNames ?? []
        let fields: [(String, String)] = [
            ("preset", "\"\(options.preset.rawValue)\""), ("model", "\"\(options.model.rawValue)\""),
            ("epochs", "\(options.epochs)"), ("batch_size", "\(options.batchSize)"), ("lr", "\(options.learningRate)"),
            ("momentum", "\(options.momentum)"), ("weight_decay", "\(options.weightDecay)"), ("seed", "\(options.seed)"),
            ("data", "\"\(options.dataDirectory)\""), ("train_images", "\(session.trainCount)"),
            ("test_images", "\(session.testCount)"), ("launch", "\"\(launch)\""),
            ("class_names", "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]"),
        ]
        let json = "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
        try AtomicFile.write(Data(json.utf8), to: (directory as NSString).appendingPathComponent("config.json"))
    }

    /// Runs every rank as a thread of this process: the simulation mode.
    public static func runSimulated(_ options: TrainingOptions) -> Int32 {
        simulate(towers: options.model.towers) { communicator, launch in run(options, communicator: communicator, launch: launch) }
    }

    /// Runs `body` on `towers` simulated ranks (or in this thread for one tower) and returns
    /// rank 0's exit code.
    public static func simulate(towers: Int, _ body: @escaping (Communicator, String) -> Int32) -> Int32 {
        guard towers > 1 else { return body(SingleProcessCommunicator(), "in one process") }
        let result = ExitCodeBox()
        InProcessGroup(size: towers).run { communicator in
            let code = body(communicator, "\(towers) towers simulated as threads of one process")
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
