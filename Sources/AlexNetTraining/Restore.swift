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

    /// Every rank loads its towers from the tower file that rank 0 reads and sends it (the
    /// checkpoint need only be on rank 0's disk); any failure ends every rank.
    static func load(_ path: String, into network: Network, comm: Communicator, reporter: Reporter) throws {
        var towers = [Double](repeating: 0, count: comm.size)
        towers[comm.rank] = Double(network.firstTower)
        towers = comm.sum(towers)
        var failed = 0.0
        for rank in 0..<comm.size {
            let file = "\(path)/\(Checkpoint.towerFileName(Int(towers[rank])))"
            guard let data = sendFromRankZero(file, to: rank, comm: comm, reporter: reporter) else {
                failed = 1
                break  // every rank learnt it from the same broadcast
            }
            guard rank == comm.rank else { continue }
            do { try Checkpoint.load(data, source: file, into: network) } catch {
                fputs("error: \(error)\n", stderr)
                failed = 1
            }
        }
        if comm.sum([failed])[0] != 0 { throw TrainingError.reported(exitCode: 1) }
    }

    /// Rank 0 reads `file` and sends its bytes to `rank` (a copy when that is rank 0 itself);
    /// every rank calls it. Returns the bytes on `rank`, empty data on the others, and nil on
    /// every rank when rank 0 could not read the file (it says so).
    private static func sendFromRankZero(_ file: String, to rank: Int, comm: Communicator, reporter: Reporter) -> Data? {
        var data = Data()
        var size = [0]
        if comm.rank == 0 {
            if let read = FileManager.default.contents(atPath: file) { (data, size[0]) = (read, read.count) } else {
                reporter.fail("\(file) is missing; the checkpoint is incomplete")
                size[0] = -1
            }
        }
        comm.broadcast(&size, root: 0)
        guard size[0] >= 0 else { return nil }
        guard rank != 0 else { return comm.rank == 0 ? data : Data() }
        var counts = [Int](repeating: 0, count: comm.size)
        counts[rank] = size[0]
        var arrived = Data(count: comm.rank == rank ? size[0] : 0)
        data.withUnsafeBytes { send in
            arrived.withUnsafeMutableBytes { comm.scatter(send, counts: counts, into: $0, root: 0) }
        }
        return arrived
    }
}
