import AlexNetCore
import AlexNetData
import Foundation

/// The training loop. Every rank runs it (SPMD); rank 0 is also the coordinator: it loads the
/// data, shuffles, assembles and broadcasts each batch, and owns every log line and file.
public enum Trainer {
    /// Trains on this rank. `launch` says how the ranks were started, for the first log line.
    /// Returns the process exit code (the same on every rank).
    public static func run(_ options: TrainingOptions, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        let isCoordinator = communicator.rank == 0

        // Set-up: only the coordinator touches the disk; the others learn the outcome by broadcast,
        // so a bad --data or --run-dir ends every rank cleanly instead of leaving one waiting.
        var data: DataSet?
        var runDirectory = ""
        var metrics: MetricsLog?
        var header = [0, 0, 0, 0]  // status, train images, test images, classes
        if isCoordinator {
            do {
                let loaded = try FashionMNIST.load(directory: options.dataDirectory, trainLimit: options.trainLimit,
                                                   testLimit: options.testLimit)
                runDirectory = try makeRunDirectory(options)
                metrics = try MetricsLog(directory: runDirectory)
                try writeConfig(options, data: loaded, launch: launch, to: runDirectory)
                data = loaded
                header = [0, loaded.train.count, loaded.test.count, loaded.classes]
            } catch {
                reporter.fail("\(error)")
                header[0] = 1
            }
        }
        communicator.broadcast(&header, root: 0)
        guard header[0] == 0 else { return 1 }
        let (trainCount, testCount, classes) = (header[1], header[2], header[3])

        // The model: every rank reaches the same verdict from the same options.
        let plan: NetworkPlan
        do {
            plan = try NetworkPlan(spec: options.preset.spec(classes: classes), model: options.model)
        } catch {
            reporter.fail("\(error)")
            return 2
        }
        var towerCommunicator = communicator
        if plan.towers == 1 && communicator.size > 1 {
            // A one-tower model does not split: rank 0 trains it alone, the others wait for it at exit.
            guard isCoordinator else { return 0 }
            towerCommunicator = SingleProcessCommunicator()
            reporter.say("note: the \(plan.model.rawValue) model has one tower, so rank 0 trains it alone with \(options.threadsForOneTower) BLAS threads; the other \(communicator.size - 1) rank(s) idle")
        } else if plan.towers != communicator.size {
            reporter.fail("the \(plan.model.rawValue) model has \(plan.towers) towers, one per rank, but this run has \(communicator.size) rank(s): use `mpirun -np \(plan.towers)`, or --simulate to run both towers in one process")
            return 2
        }
        BLAS.setThreads(towerCommunicator.size == 1 && plan.towers == 1 ? options.threadsForOneTower : 1)

        let network: Network
        do {
            network = try Network(plan: plan, communicator: towerCommunicator, maxBatch: min(options.batchSize, trainCount),
                                  seed: options.seed, initialization: options.initialization)
        } catch {
            reporter.fail("\(error)")
            return 2
        }
        let coordinator = data.map { Coordinator(data: $0, input: plan.spec.input, seed: options.seed) }
        let comm = towerCommunicator
        let inputSize = plan.spec.input.size
        let batch = network.maxBatch

        /// Broadcasts the `n`-image batch that the coordinator assembled into the network.
        func broadcastBatch(_ n: Int) {
            comm.broadcast(UnsafeMutableRawBufferPointer(start: network.input.pointer, count: n * inputSize * 4), root: 0)
            network.labels.withUnsafeMutableBytes { comm.broadcast(UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * 4)]), root: 0) }
        }

        reporter.say("training \(plan.spec.name)/\(plan.model.rawValue) on \(data?.name ?? "") (\(trainCount) train, \(testCount) test images, \(classes) classes), \(launch)")
        reporter.say("batch \(options.batchSize), lr \(options.learningRate), momentum \(options.momentum), weight decay \(options.weightDecay), seed \(options.seed), \((options.initialization ?? plan.spec.initialization).rawValue) init; run directory \(runDirectory)")

        let sgd = SGD(learningRate: options.learningRate, momentum: options.momentum, weightDecay: options.weightDecay)
        let stepsPerEpoch = (trainCount + batch - 1) / batch
        let totalSteps = min(options.epochs * stepsPerEpoch, options.maxSteps ?? Int.max)
        let started = now()
        var step = 0
        var final = Evaluation(loss: .nan, top1: 0, top5: 0, count: 0)
        for epoch in 1...options.epochs where step < totalSteps {
            coordinator?.shuffle(epoch: epoch)
            let epochStart = now()
            var (epochLoss, epochCorrect, epochSeen) = (0.0, 0, 0)
            var (windowLoss, windowCorrect, windowSeen, windowStart) = (0.0, 0, 0, now())
            for s in 0..<stepsPerEpoch where step < totalSteps {
                let first = s * batch, n = min(batch, trainCount - first)
                coordinator?.assembleTraining(first..<(first + n), into: network)
                broadcastBatch(n)
                let (loss, correct) = network.run(batch: n, context: StepContext(training: true, step: step, seed: options.seed))
                guard loss.isFinite else {
                    reporter.fail("the loss became \(loss) at step \(step + 1) (epoch \(epoch)); training stopped. Lower --lr (now \(options.learningRate))")
                    return 3
                }
                sgd.update(network.parameters)
                step += 1
                epochLoss += loss * Double(n); epochCorrect += correct; epochSeen += n
                windowLoss += loss * Double(n); windowCorrect += correct; windowSeen += n
                if step % options.logEvery == 0 || s == stepsPerEpoch - 1 || step == totalSteps {
                    let elapsed = now() - windowStart
                    let rate = Double(windowSeen) / max(elapsed, 1e-9)
                    let eta = Double(totalSteps - step) * (now() - started) / Double(step)
                    reporter.say(String(format: "epoch %d/%d  step %4d/%d  loss %.4f  train acc %5.1f%%  %6.1f img/s  ETA %@",
                                        epoch, options.epochs, s + 1, stepsPerEpoch, windowLoss / Double(windowSeen),
                                        100 * Double(windowCorrect) / Double(windowSeen), rate, formatDuration(eta)))
                    metrics?.record(["kind": "step", "epoch": epoch, "step": step, "loss": windowLoss / Double(windowSeen),
                                     "train_accuracy": Double(windowCorrect) / Double(windowSeen), "images_per_second": rate])
                    (windowLoss, windowCorrect, windowSeen, windowStart) = (0, 0, 0, now())
                }
            }
            final = evaluate(network: network, coordinator: coordinator, count: testCount, broadcast: broadcastBatch, seed: options.seed)
            let seconds = now() - epochStart
            reporter.say(String(format: "epoch %d/%d done in %@: train loss %.4f acc %.2f%% | test loss %.4f top-1 %.2f%% top-5 %.2f%%",
                                epoch, options.epochs, formatDuration(seconds), epochLoss / Double(epochSeen),
                                100 * Double(epochCorrect) / Double(epochSeen), final.loss, 100 * final.top1, 100 * final.top5))
            metrics?.record(["kind": "epoch", "epoch": epoch, "step": step, "train_loss": epochLoss / Double(epochSeen),
                             "train_accuracy": Double(epochCorrect) / Double(epochSeen), "test_loss": final.loss,
                             "test_top1": final.top1, "test_top5": final.top5, "seconds": seconds])
        }
        if let prefix = options.dumpWeightsPrefix {
            do { try dumpWeights(network, prefix: prefix) } catch {
                reporter.fail("\(error)")
                return 1
            }
        }
        reporter.say(String(format: "test accuracy %.2f%% (top-5 %.2f%%, %d images) after %d steps in %@; metrics in %@",
                            100 * final.top1, 100 * final.top5, final.count, step, formatDuration(now() - started),
                            metrics?.path ?? ""))
        return 0
    }

    struct Evaluation {
        var loss: Double, top1: Double, top5: Double, count: Int
    }

    /// Test loss, top-1 and top-5 over `count` test images (no dropout); meaningful on rank 0.
    static func evaluate(network: Network, coordinator: Coordinator?, count: Int, broadcast: (Int) -> Void, seed: UInt64) -> Evaluation {
        var (loss, top1, top5) = (0.0, 0, 0)
        let classes = network.plan.classes
        for first in stride(from: 0, to: count, by: network.maxBatch) {
            let n = min(network.maxBatch, count - first)
            coordinator?.assembleTest(first..<(first + n), into: network)
            broadcast(n)
            let result = network.run(batch: n, context: StepContext(training: false, step: 0, seed: seed))
            loss += result.loss * Double(n)
            top1 += result.correct
            for b in 0..<n where topClasses(logits: network.logits, classes: classes, batch: n, sample: b, k: 5).contains(Int(network.labels[b])) {
                top5 += 1
            }
        }
        let total = Double(max(count, 1))
        return Evaluation(loss: loss / total, top1: Double(top1) / total, top5: Double(top5) / total, count: count)
    }

    /// Writes this rank's weights to `<prefix>-tower<first tower>.safetensors`.
    static func dumpWeights(_ network: Network, prefix: String) throws {
        let tensors = network.parameters.map { SafeTensors.Tensor(name: $0.name, shape: $0.shape, values: $0.value.array) }
        try AtomicFile.write(SafeTensors.encode(tensors), to: "\(prefix)-tower\(network.firstTower).safetensors")
    }

    static func makeRunDirectory(_ options: TrainingOptions) throws -> String {
        let path: String
        if let given = options.runDirectory {
            path = given
        } else {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMdd-HHmmss"
            path = "runs/\(options.preset.rawValue)-\(options.model.rawValue)-\(formatter.string(from: Date()))"
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("cannot create run directory \(path): \((error as NSError).localizedDescription); pass a writable --run-dir")
        }
        guard access(path, W_OK) == 0 else { throw TrainingError("run directory \(path) is not writable; pass a writable --run-dir") }
        return path
    }

    static func writeConfig(_ options: TrainingOptions, data: DataSet, launch: String, to directory: String) throws {
        let fields: [(String, String)] = [
            ("preset", "\"\(options.preset.rawValue)\""), ("model", "\"\(options.model.rawValue)\""),
            ("epochs", "\(options.epochs)"), ("batch_size", "\(options.batchSize)"), ("lr", "\(options.learningRate)"),
            ("momentum", "\(options.momentum)"), ("weight_decay", "\(options.weightDecay)"), ("seed", "\(options.seed)"),
            ("data", "\"\(options.dataDirectory)\""), ("train_images", "\(data.train.count)"),
            ("test_images", "\(data.test.count)"), ("launch", "\"\(launch)\""),
            ("class_names", "[" + data.classNames.map { "\"\($0)\"" }.joined(separator: ",") + "]"),
        ]
        let json = "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
        try AtomicFile.write(Data(json.utf8), to: (directory as NSString).appendingPathComponent("config.json"))
    }

    /// Runs every rank as a thread of this process: the simulation mode.
    public static func runSimulated(_ options: TrainingOptions) -> Int32 {
        let towers = options.model.towers
        guard towers > 1 else { return run(options, communicator: SingleProcessCommunicator(), launch: "in one process") }
        let result = ExitCodeBox()
        InProcessGroup(size: towers).run { communicator in
            let code = run(options, communicator: communicator, launch: "\(towers) towers simulated as threads of one process")
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
