import AlexNetCore
import Foundation

/// `eval`: a checkpoint's test top-1 and top-5, under mpirun or simulated.
public enum CheckpointEvaluation {
    /// Every rank calls it; returns the exit code.
    public static func run(checkpoint: String, options: TrainingOptions, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        do {
            let session = try Session.open(directory: options.dataDirectory, trainLimit: 1, testLimit: options.testLimit,
                                           communicator: communicator)
            let (path, manifest) = try Restore.share(checkpoint, classes: session.classes, comm: communicator, reporter: reporter)
            guard let preset = Preset(rawValue: manifest.preset), let model = ModelKind(rawValue: manifest.model) else {
                throw TrainingError("\(path) holds an unknown model \(manifest.preset)/\(manifest.model)")
            }
            let plan = try NetworkPlan(spec: preset.spec(classes: session.classes), model: model)
            if plan.towers > 1 && plan.towers != communicator.size {
                throw TrainingError("the checkpoint holds the \(model.rawValue) model with \(plan.towers) towers, one per rank: use `mpirun -np \(plan.towers)` or --simulate", exitCode: 2)
            }
            let (evaluation, _) = try Trainer.onTowerRanks(plan: plan, session: session, threads: options.threadsForOneTower, launch: launch,
                                                           stopped: { $0 == nil }) { comm, how in
                BLAS.setThreads(comm.size == 1 && plan.towers == 1 ? options.threadsForOneTower : 1)
                let network = try Network(plan: plan, communicator: comm, maxBatch: options.batchSize, seed: manifest.seed)
                try Restore.load(path, into: network, comm: comm, reporter: reporter)
                let coordinator = session.data.map {
                    Coordinator(data: $0, input: plan.spec.input, seed: manifest.seed, normalization: manifest.normalization)
                }
                reporter.say("evaluating \(path) (\(manifest.preset)/\(manifest.model), epoch \(manifest.epoch), step \(manifest.step)) on \(session.testCount) test images, \(how)")
                return Trainer.evaluate(network: network, coordinator: coordinator, count: session.testCount,
                                        broadcast: BatchBroadcast(network: network, communicator: comm).send, seed: manifest.seed)
            }
            guard session.isCoordinator else { return 0 }
            guard let result = evaluation ?? nil else {
                reporter.say("stopped at your request")
                return 130
            }
            reporter.say(String(format: "test top-1 %.2f%%, top-5 %.2f%%, loss %.4f (%d images)", 100 * result.top1, 100 * result.top5,
                                result.loss, session.testCount))
            return 0
        } catch {
            return reporter.exitCode(for: error)
        }
    }
}
