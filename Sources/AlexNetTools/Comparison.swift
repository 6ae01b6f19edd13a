import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation

/// `compare`: trains the three models of docs/models.md on the same data, data order, seeds and
/// schedule, and reports them side by side.
public enum Comparison {
    public struct Options: Sendable {
        public var training = TrainingOptions()
        /// Seeds `training.seed`, `training.seed + 1`, ...
        public var seeds = 1
        public var models = ModelKind.allCases
        public init() {}
    }

    /// Every rank calls it; returns the exit code (130 when stopped by Ctrl-C).
    public static func run(_ options: Options, communicator: Communicator, launch: String) -> Int32 {
        let reporter = Reporter(speaks: communicator.rank == 0)
        do {
            let t = options.training
            let session = try Session.open(directory: t.dataDirectory, trainLimit: t.trainLimit, testLimit: t.testLimit,
                                           settings: t.data, preset: t.preset, seed: t.seed, communicator: communicator)
            let base = t.runDirectory ?? Trainer.defaultRunDirectory(t, kind: "compare")
            var results: [RunResult] = []
            var unfinished: [String] = []
            runs: for seedIndex in 0..<options.seeds {
                for (m, model) in options.models.enumerated() {
                    var o = t
                    o.model = model
                    o.seed = t.seed + UInt64(seedIndex)
                    reporter.say("\n== \(model.rawValue), seed \(o.seed) (run \(seedIndex * options.models.count + m + 1) of \(options.seeds * options.models.count))")
                    let result = try Trainer.train(o, session: session, runDirectory: "\(base)/seed-\(o.seed)/\(model.rawValue)", launch: launch)
                    if result.interrupted {
                        let left = options.models.dropFirst(m).map { "\($0.rawValue) seed \(o.seed)" }
                            + (seedIndex + 1 < options.seeds ? ["every model for seeds \(o.seed + 1)...\(t.seed + UInt64(options.seeds) - 1)"] : [])
                        unfinished = left
                        break runs
                    }
                    results.append(result)
                }
            }
            guard session.isCoordinator else { return (unfinished.isEmpty ? ExitStatus.success : .stopped).rawValue }
            let report = ComparisonReport(preset: t.preset.rawValue, epochs: t.epochs, results: results, unfinished: unfinished)
            try report.write(to: base)
            reporter.say("\n" + report.markdown)
            reporter.say("written: \(base)/compare.md, compare.csv, compare.json, compare.svg")
            if !unfinished.isEmpty {
                reporter.say("stopped at your request; not finished: \(unfinished.joined(separator: ", "))")
                return ExitStatus.stopped.rawValue
            }
            return ExitStatus.success.rawValue
        } catch {
            return reporter.exitCode(for: error)
        }
    }
}
