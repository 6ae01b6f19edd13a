import AlexNetCore
import Foundation

/// Finding a checkpoint on rank 0 and telling every rank about it.
enum Restore {
    /// Rank 0 resolves `path` (a run folder or a checkpoint folder) and checks it against the
    /// data's classes; every rank gets the checkpoint's folder and manifest, or the same error.
    static func share(_ path: String, classes: Int?, comm: Communicator, reporter: Reporter) throws -> (path: String, manifest: CheckpointManifest) {
        let shared = try comm.agree(decider: 0) {
            let found = try Checkpoint.resolve(path)
            for why in found.skipped { reporter.say("note: skipped a damaged checkpoint: \(why)") }
            if let classes, found.manifest.classes != classes {
                throw TrainingError("\(found.path) was trained on \(found.manifest.classes) classes, but this data set has \(classes); pass the --data it was trained on")
            }
            return Shared(path: found.path, manifest: found.manifest)
        }
        return (shared.path, shared.manifest)
    }

    private struct Shared: Codable {
        var path: String
        var manifest: CheckpointManifest
    }

    /// Checks that the checkpoint is of the model the options ask for.
    static func check(_ manifest: CheckpointManifest, path: String, options: TrainingOptions) throws {
        guard manifest.preset == options.preset.rawValue, manifest.model == options.model.rawValue else {
            throw TrainingError("\(path) holds a \(manifest.preset)/\(manifest.model) model, not \(options.preset.rawValue)/\(options.model.rawValue); pass --preset \(manifest.preset) --model \(manifest.model)", exitCode: 2)
        }
    }

    /// Every rank loads its towers; any failure ends every rank.
    static func load(_ path: String, into network: Network, comm: Communicator, reporter: Reporter) throws {
        let outcome = Result { try Checkpoint.load(path, into: network) }
        // Rank 0's error is printed by its reporter; another rank's by that rank.
        if case .failure(let error) = outcome, comm.rank != 0 { fputs("error: rank \(comm.rank): \(error)\n", stderr) }
        try comm.agree(outcome)
    }
}
