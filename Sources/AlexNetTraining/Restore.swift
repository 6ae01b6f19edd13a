import AlexNetCore
import Foundation

/// Finding a checkpoint on rank 0 and telling every rank about it.
enum Restore {
    /// Rank 0 resolves `path` (a run folder or a checkpoint folder) and checks it against the
    /// data's classes; every rank gets the checkpoint's folder and manifest, or the same error.
    static func share(_ path: String, classes: Int?, comm: Communicator, reporter: Reporter) throws -> (path: String, manifest: CheckpointManifest) {
        var payload = Data()
        var header = [0, 0]  // status, payload bytes
        if comm.rank == 0 {
            do {
                let found = try Checkpoint.resolve(path)
                for why in found.skipped { reporter.say("note: skipped a damaged checkpoint: \(why)") }
                if found.manifest.checksum == nil {
                    reporter.say("note: \(found.path)/\(Checkpoint.manifestName) was written before manifests carried a checksum of their own; its values were range-checked, its tower files checked against their CRC-32s")
                }
                if let classes, found.manifest.classes != classes {
                    throw TrainingError("\(found.path) was trained on \(found.manifest.classes) classes, but this data set has \(classes); pass the --data it was trained on")
                }
                payload = try JSONEncoder().encode(Shared(path: found.path, manifest: found.manifest))
                header = [0, payload.count]
            } catch {
                reporter.fail("\(error)")
                header[0] = 1
            }
        }
        comm.broadcast(&header, root: 0)
        guard header[0] == 0 else { throw TrainingError.reported(exitCode: 1) }
        var bytes = [UInt8](payload)
        if comm.rank != 0 { bytes = [UInt8](repeating: 0, count: header[1]) }
        comm.broadcast(&bytes, root: 0)
        let shared = try JSONDecoder().decode(Shared.self, from: Data(bytes))
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
    static func load(_ path: String, manifest: CheckpointManifest, into network: Network, comm: Communicator, reporter: Reporter) throws {
        var failed = 0.0
        do { try Checkpoint.load(path, manifest: manifest, into: network) } catch {
            fputs("error: \(error)\n", stderr)
            failed = 1
        }
        if comm.sum([failed])[0] != 0 { throw TrainingError.reported(exitCode: 1) }
    }
}
