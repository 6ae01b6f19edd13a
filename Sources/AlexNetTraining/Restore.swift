import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import Foundation

/// Finding a checkpoint on rank 0 and telling every rank about it.
public enum Restore {
    /// Rank 0 resolves `path` (a run folder or a checkpoint folder); every rank gets the
    /// checkpoint's folder and manifest, or the same error. The others wait idly: checking
    /// every file's checksum may take rank 0 long, and no collective timeout applies yet.
    public static func share(_ path: String, comm: Communicator, reporter: Reporter) throws -> (path: String, manifest: CheckpointManifest) {
        let shared = try comm.agree(decider: 0, idly: true) {
            let found = try Checkpoint.resolve(path)
            for why in found.skipped { reporter.say("note: skipped a damaged checkpoint: \(why)") }
            if found.manifest.checksum == nil {
                reporter.say("note: \(found.path)/\(Checkpoint.manifestName) was written before manifests carried a checksum of their own; its values were range-checked, its tower files checked against their CRC-32s")
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
    public static func check(_ manifest: CheckpointManifest, path: String, options: TrainingOptions) throws {
        guard manifest.preset == options.preset.rawValue, manifest.model == options.model.rawValue else {
            throw TrainingError("\(path) holds a \(manifest.preset)/\(manifest.model) model, not \(options.preset.rawValue)/\(options.model.rawValue); pass --preset \(manifest.preset) --model \(manifest.model)", status: .modelCannotRun)
        }
    }

    /// Every rank loads its towers from the tower file that rank 0 reads and sends it (the
    /// checkpoint need only be on rank 0's disk), checked again as it arrives (size, CRC-32,
    /// metadata, finite values); any failure ends every rank.
    public static func load(_ path: String, manifest: CheckpointManifest, into network: Network, comm: Communicator, reporter: Reporter) throws {
        // Which tower each rank holds, so that rank 0 knows which file goes where.
        let towers = try comm.agreeEach(.success(network.firstTower))
        var mine = Data()
        for rank in 0..<comm.size {
            let file = "\(path)/\(Checkpoint.towerFileName(towers[rank]))"
            // A file rank 0 cannot read ends every rank: all learn it from the same broadcast.
            guard let data = sendFromRankZero(file, to: rank, comm: comm, reporter: reporter) else {
                throw TrainingError.reported(.failure)
            }
            if rank == comm.rank { mine = data }
        }
        let outcome = Result { try Checkpoint.load(path, manifest: manifest, into: network, bytes: mine) }
        // Rank 0's error is printed by its reporter; another rank's by that rank.
        if case .failure(let error) = outcome, comm.rank != 0 { Console.writeError("error: rank \(comm.rank): \(error)\n") }
        try comm.agree(outcome)
    }

    /// Rank 0 reads `file` and sends its bytes to `rank` (a copy when that is rank 0 itself);
    /// every rank calls it. Returns the bytes on `rank`, empty data on the others, and nil on
    /// every rank when rank 0 could not read the file (it says so).
    private static func sendFromRankZero(_ file: String, to rank: Int, comm: Communicator, reporter: Reporter) -> Data? {
        var data = Data()
        var size = [0]
        if comm.rank == 0 {
            if let read = try? HeldFiles.contents(file, limit: ReadLimits.checkpointFileBytes, what: "checkpoint file") { (data, size[0]) = (read, read.count) } else {
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

/// Where a resumed run starts, resolved once, before anything else: the checkpoint and its
/// manifest, on every rank. The checkpoint's own settings carry on (`applied`); only the number
/// of epochs may change.
public struct ResumeState: Sendable {
    public let path: String
    public let manifest: CheckpointManifest

    /// Rank 0 resolves `path` (a run folder or a checkpoint folder); every rank gets the same
    /// checkpoint, or the same error. The model must be the one `options` ask for.
    public static func resolve(_ path: String, options: TrainingOptions, comm: Communicator, reporter: Reporter) throws -> ResumeState {
        let found = try Restore.share(path, comm: comm, reporter: reporter)
        try Restore.check(found.manifest, path: found.path, options: options)
        return ResumeState(path: found.path, manifest: found.manifest)
    }

    /// The run folder a `--resume` path continues in: a checkpoint folder's run is two levels
    /// up; a run folder is itself.
    public static func runDirectory(resuming path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().lastPathComponent == "checkpoints"
            ? url.deletingLastPathComponent().deletingLastPathComponent().path : path
    }

    /// The options a resumed run trains with: the checkpoint's data (the same images in the
    /// same order), seed, batch size, momentum and weight decay, its epochs unless given, and
    /// its run folder.
    public func applied(to options: TrainingOptions) -> TrainingOptions {
        var o = options
        let m = manifest
        if !o.dataDirectoryGiven, let directory = m.dataDirectory { o.dataDirectory = directory }
        (o.trainLimit, o.testLimit) = (m.trainLimit, m.testLimit)
        if var settings = m.dataSettings {
            (settings.tenCrop, settings.prefetch) = (o.data.tenCrop, o.data.prefetch)
            o.data = settings
        }
        (o.seed, o.batchSize, o.momentum, o.weightDecay) = (m.seed, m.batchSize, m.momentum, m.weightDecay)
        // The rate the schedule stands at, so that the "lr" a resumed run prints is the one it uses.
        o.learningRate = m.learningRateSchedule.rate
        if !o.epochsGiven { o.epochs = m.epochs }
        if o.replicaLayout == nil { o.replicaLayout = m.replicaLayout }
        o.runDirectory = Self.runDirectory(resuming: path)
        return o
    }

    /// Checks the checkpoint against the data: every rank knows both, so every rank stops alike.
    public func check(_ session: Session) throws {
        if manifest.classes != session.classes {
            throw TrainingError("\(path) was trained on \(manifest.classes) classes, but this data set has \(session.classes); pass the --data it was trained on")
        }
        if let images = manifest.trainImages, images != session.trainCount {
            throw TrainingError("\(path) was trained on \(images) training images, but this data has \(session.trainCount); resume with the same --data", status: .modelCannotRun)
        }
    }

    /// The input statistics the checkpoint's model was trained with, read by rank 0 (nil on
    /// the others). A file that cannot be read is an error: statistics computed afresh would
    /// differ from the checkpoint's, and the resumed run would no longer be bit-identical.
    public func statistics(_ session: Session) throws -> InputStatistics? {
        var statistics: InputStatistics?
        try session.onCoordinator { statistics = try Checkpoint.statistics(path, manifest: manifest) }
        return statistics
    }
}
