import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTraining
import Foundation

/// `eval`: a checkpoint's test top-1 and top-5, under mpirun or simulated.
public enum CheckpointEvaluation {
    /// Every rank calls it; returns the exit code. The data is read and prepared as the
    /// checkpoint's run did; `options` give the data directory (nil-able through
    /// `dataDirectoryGiven`), the test limit, the batch size and `data.tenCrop`.
    public static func run(checkpoint: String, options: TrainingOptions, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        do {
            let (path, manifest) = try Restore.share(checkpoint, comm: communicator, reporter: reporter)
            guard let preset = Preset(rawValue: manifest.preset), let model = ModelKind(rawValue: manifest.model) else {
                throw TrainingError("\(path) holds an unknown model \(manifest.preset)/\(manifest.model)")
            }
            var settings = manifest.dataSettings ?? DataSettings()
            (settings.tenCrop, settings.prefetch) = (options.data.tenCrop, false)
            let directory = options.dataDirectoryGiven ? options.dataDirectory : manifest.dataDirectory ?? options.dataDirectory
            let session = try Session.open(directory: directory, trainLimit: 1, testLimit: options.testLimit, settings: settings,
                                           preset: preset, seed: manifest.seed, communicator: communicator)
            guard session.classes == manifest.classes else {
                throw TrainingError("\(path) was trained on \(manifest.classes) classes, but \(directory) has \(session.classes); pass the --data it was trained on")
            }
            let plan = try NetworkPlan(spec: session.layout.spec(preset, classes: session.classes), model: model)
            if plan.towers > 1 && plan.towers != communicator.size {
                throw TrainingError("the checkpoint holds the \(model.rawValue) model with \(plan.towers) towers, one per rank: use `mpirun -np \(plan.towers)` or --simulate", status: .modelCannotRun)
            }
            var statistics: InputStatistics?
            try session.onCoordinator { statistics = try Checkpoint.statistics(path, manifest: manifest) }
            let (evaluation, _) = try Trainer.onTowerRanks(plan: plan, session: session, threads: options.threadsForOneTower, launch: launch,
                                                           stopped: { $0 == nil }) { comm, how in
                let model = RankContext.Model(plan: plan, maxBatch: options.batchSize, seed: manifest.seed,
                                              algorithms: options.convolutionAlgorithm, stored: manifest.convolutionAlgorithms,
                                              training: false, threadsAlone: options.threadsForOneTower, checkpoint: (path, manifest))
                let context = try RankContext(model, pair: comm, world: comm, reporter: reporter) { _ in
                    session.data.map {
                        Coordinator(data: $0, input: plan.spec.input, layout: session.layout, settings: settings, seed: manifest.seed,
                                    restored: statistics)
                    }
                }
                reporter.say("evaluating \(path) (\(manifest.preset)/\(manifest.model), epoch \(manifest.epoch), step \(manifest.step)) on \(session.testCount) test images\(settings.tenCrop ? " x 10 patches" : ""), \(how)")
                let network = context.network
                return Trainer.evaluate(network: network, batch: Batch(shape: plan.spec.input, capacity: network.maxBatch),
                                        coordinator: context.coordinator, count: session.testCount,
                                        transport: context.pairTransport(comm, layout: session.layout),
                                        seed: manifest.seed, tenCrop: settings.tenCrop)
            }
            guard session.isCoordinator else { return ExitStatus.success.rawValue }
            guard let result = evaluation ?? nil else {
                reporter.say("stopped at your request")
                return ExitStatus.stopped.rawValue
            }
            if let note = Trainer.Evaluation.topNote(classes: plan.classes) { reporter.say(note) }
            reporter.say(String(format: "test top-1 %.2f%%, \(Trainer.Evaluation.topName(classes: plan.classes)) %.2f%%, loss %.4f (%d images%@)", 100 * result.top1, 100 * result.top5,
                                result.loss, session.testCount, settings.tenCrop ? ", 10 patches each" : ""))
            return ExitStatus.success.rawValue
        } catch {
            return reporter.exitCode(for: error)
        }
    }
}
