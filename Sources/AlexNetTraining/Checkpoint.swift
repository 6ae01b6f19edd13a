import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import CZlib
import Foundation

/// What a checkpoint's manifest says: the run's settings, where training stood, and a size and
/// CRC-32 for every tower file. Written last, so a checkpoint exists only when it does.
public struct CheckpointManifest: Codable, Sendable {
    public struct File: Codable, Sendable {
        public var name: String
        public var bytes: Int
        public var crc32: UInt32
    }

    public struct Schedule: Codable, Sendable {
        var kind: String, rate: Float, factor: Float, patience: Int, minimum: Float, stepEpochs: Int
        var bestError: Double?, epochsWithoutImprovement: Int
    }

    public var format = "alexnet-split checkpoint"
    public var version = 1
    public var preset: String
    public var model: String
    public var classes: Int
    public var towers: Int
    public var seed: UInt64
    public var batchSize: Int
    public var epochs: Int
    public var momentum: Float
    public var weightDecay: Float
    public var initialization: String?
    /// Steps done in all, and where in the data order the next step starts.
    public var step: Int
    public var epoch: Int
    public var stepInEpoch: Int
    public var schedule: Schedule
    public var history: [EpochResult]
    /// Inputs were `(pixel/255 - pixelMean) / pixelStd`, resized to the preset's input.
    public var pixelMean: Float?
    public var pixelStd: Float?
    /// The data set's class names, in label order.
    public var classNames: [String]?
    /// The data it was trained on: a resumed run must read the same images in the same order.
    public var dataDirectory: String?
    public var trainLimit: Int?
    public var testLimit: Int?
    public var trainImages: Int?
    /// How the data was read and prepared (nil in checkpoints of Fashion-MNIST-only versions:
    /// IDX, resized).
    public var dataSettings: DataSettings?
    public var dataLayout: DataLayout?
    /// The convolutions' algorithms (nil in checkpoints from before there was a choice: GEMM),
    /// so that a resumed `auto` run computes what the first one did.
    public var convolutionAlgorithms: ConvolutionPlan?
    /// How the replicas shared the model (nil with one replica, and in checkpoints from before
    /// there was a choice: data), which a resume keeps unless asked otherwise. The tower files
    /// are the same in either layout and at any number of replicas.
    public var replicaLayout: ReplicaLayoutKind?

    var normalization: (mean: Float, std: Float)? {
        guard let pixelMean, let pixelStd else { return nil }
        return (pixelMean, pixelStd)
    }
    public var files: [File] = []
    /// The manifest's own checksum (see ManifestChecks.swift); nil in manifests written before it.
    public var checksum: String?

    /// The schedule as it stood.
    public var learningRateSchedule: LearningRateSchedule {
        var s = LearningRateSchedule(kind: ScheduleKind(rawValue: schedule.kind) ?? .constant, initialRate: schedule.rate)
        s.factor = schedule.factor
        s.patience = schedule.patience
        s.minimum = schedule.minimum
        s.stepEpochs = schedule.stepEpochs
        s.bestError = schedule.bestError ?? .infinity
        s.epochsWithoutImprovement = schedule.epochsWithoutImprovement
        return s
    }

    static func schedule(_ s: LearningRateSchedule) -> Schedule {
        Schedule(kind: s.kind.rawValue, rate: s.rate, factor: s.factor, patience: s.patience, minimum: s.minimum,
                 stepEpochs: s.stepEpochs, bestError: s.bestError.isFinite ? s.bestError : nil,
                 epochsWithoutImprovement: s.epochsWithoutImprovement)
    }
}


/// Checkpoints: `<run>/checkpoints/step-NNNNNNN/` holding `tower<t>.safetensors` (each tower's
/// weights and momentum) and `manifest.json` (written last, with every file's size and CRC-32).
///
/// Rank 0 writes the whole checkpoint on its own disk: the other ranks send their tower files
/// over the communicator, and on loading rank 0 reads them and sends each rank its own. So the
/// run directory need not be shared between hosts, and the checkpoint is all in one place.
///
/// Tensor names in a tower file: `<layer>.weight`, `<layer>.bias` (the tower's kernels, PyTorch
/// layout) and the same names with `.momentum` appended.
public enum Checkpoint {
    public static let manifestName = "manifest.json"

    static func directory(run: String, step: Int) -> String {
        "\(run)/checkpoints/" + String(format: "step-%07d", step)
    }

    static func towerFileName(_ tower: Int) -> String { "tower\(tower).safetensors" }

    /// Writes a checkpoint of every rank's towers; all ranks of `comm` call it. Keeps the newest
    /// `keep`. Refuses weights that are not finite, so a diverged run never overwrites a good one.
    /// `coordinatorFiles` (name and bytes) are written by rank 0 and checked like the rest.
    /// `tensors`: this rank's towers' weights and momenta, whole (`ReplicaTraining.towerTensors`).
    static func save(network: Network, tensors: [SafeTensors.Tensor], manifest: CheckpointManifest, run: String, keep: Int,
                     coordinatorFiles: [String: Data] = [:], comm: Communicator, reporter: Reporter) throws -> String {
        let path = directory(run: run, step: manifest.step)
        try refuseNonFinite(tensors, step: manifest.step, comm: comm, reporter: reporter)
        try comm.agree(comm.rank != 0 ? .success(()) : Result {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw TrainingError("cannot create \(path): \((error as NSError).localizedDescription); the previous checkpoint is kept")
            }
        })
        // Every rank's tower file travels to rank 0, which writes it: the run directory need
        // only be on rank 0's disk. After a failure rank 0 still takes part in the rest.
        var m = manifest
        var failure: Error?
        try gatherOnRankZero(towerFile(network, tensors: tensors, manifest: manifest), comm: comm) { rank, bytes in
            guard failure == nil else { return }
            let name = towerFileName(rank * network.towersHere)
            do {
                try AtomicFile.write(bytes, to: "\(path)/\(name)")
                m.files.append(CheckpointManifest.File(name: name, bytes: bytes.count, crc32: crc(bytes)))
            } catch { failure = error }
        }
        try comm.agree(comm.rank != 0 ? .success(()) : Result {
            do {
                if let failure { throw failure }
                try writeManifest(m, coordinatorFiles: coordinatorFiles, to: path)
                prune(run: run, keep: keep)
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw TrainingError("\(error); the previous checkpoint is kept")
            }
        })
        return path
    }

    /// Ends every rank with exit code 3 when any rank's weights are not finite.
    private static func refuseNonFinite(_ tensors: [SafeTensors.Tensor], step: Int, comm: Communicator, reporter: Reporter) throws {
        let finite = tensors.allSatisfy { $0.values.allSatisfy(\.isFinite) }
        guard try comm.agreeEach(.success(finite)).allSatisfy({ $0 }) else {
            reporter.fail("the weights are no longer finite at step \(step); no checkpoint was written over the last good one")
            throw TrainingError.reported(.diverged)
        }
    }

    /// This rank's tower file: its towers' weights and momenta, with metadata naming them.
    private static func towerFile(_ network: Network, tensors: [SafeTensors.Tensor], manifest: CheckpointManifest) -> Data {
        SafeTensors.encode(tensors, metadata: [
            "preset": manifest.preset, "model": manifest.model, "tower": "\(network.firstTower)",
            "towers_in_file": "\(network.towersHere)", "step": "\(manifest.step)"])
    }

    /// Rank 0 writes its own files, then the manifest that makes the checkpoint exist.
    private static func writeManifest(_ manifest: CheckpointManifest, coordinatorFiles: [String: Data], to path: String) throws {
        var m = manifest
        for (name, data) in coordinatorFiles.sorted(by: { $0.key < $1.key }) {
            try AtomicFile.write(data, to: "\(path)/\(name)")
            m.files.append(CheckpointManifest.File(name: name, bytes: data.count, crc32: crc(data)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(m.sealed()), to: "\(path)/\(manifestName)")
        syncDirectory(path)
    }

    /// Hands every rank's `data` to `receive` on rank 0, in rank order, one rank at a time (so
    /// rank 0 holds one other rank's bytes at a time); every rank of `comm` calls it.
    static func gatherOnRankZero(_ data: Data, comm: Communicator, _ receive: (_ rank: Int, Data) -> Void) throws {
        let sizes = try comm.agreeEach(.success(data.count))
        if comm.rank == 0 { receive(0, data) }
        for sender in 1..<max(comm.size, 1) {
            var counts = [Int](repeating: 0, count: comm.size)
            counts[sender] = sizes[sender]
            var arrived = Data(count: comm.rank == 0 ? counts[sender] : 0)
            data.withUnsafeBytes { send in
                arrived.withUnsafeMutableBytes { comm.gather(send, counts: counts, into: $0, root: 0) }
            }
            if comm.rank == 0 { receive(sender, arrived) }
        }
    }

    static func towerTensors(_ network: Network) -> [SafeTensors.Tensor] {
        network.parameters.flatMap { p in
            [SafeTensors.Tensor(name: p.name, shape: p.shape, values: p.value.array),
             SafeTensors.Tensor(name: p.name + ".momentum", shape: p.shape, values: p.momentum.array)]
        }
    }

    /// The CRC-32 (zlib's) the manifest keeps for every file.
    public static func crc(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { UInt32(crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, uInt($0.count))) }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Deletes all but the newest `keep` checkpoints.
    static func prune(run: String, keep: Int) {
        let all = steps(run: run)
        for step in all.dropLast(max(keep, 1)) { try? FileManager.default.removeItem(atPath: directory(run: run, step: step)) }
    }

    /// Steps of the checkpoint folders a run holds, oldest first.
    public static func steps(run: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints")) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    /// Reads a checkpoint's manifest and checks it, and every file it lists, before trusting
    /// any of it: the manifest's checksum and values, each file's size (before reading it) and
    /// CRC-32, and the files' contents (CheckpointReading.swift).
    public static func validate(_ path: String) throws -> CheckpointManifest {
        let manifestPath = "\(path)/\(manifestName)"
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw TrainingError("\(path) has no \(manifestName): it is not a complete checkpoint (a crash while writing leaves none)")
        }
        HeldFiles.hold(manifestPath)
        let data = try HeldFiles.contents(manifestPath, limit: ReadLimits.manifestBytes, what: "checkpoint manifest")
        let manifest = try decodeManifest(data, path: manifestPath)
        // Held from here on: a run that rotates its checkpoints cannot take them away.
        for file in manifest.files { HeldFiles.hold("\(path)/\(file.name)") }
        for file in manifest.files {
            try checkContent(of: file, bytes: try checkedFile(file, in: path), manifest: manifest, in: path)
        }
        return manifest
    }

    /// A listed file's bytes, once its size and CRC-32 match the manifest's.
    static func checkedFile(_ file: CheckpointManifest.File, in path: String) throws -> Data {
        let filePath = "\(path)/\(file.name)"
        guard HeldFiles.hold(filePath) else { throw TrainingError("\(filePath) is missing; the checkpoint is incomplete") }
        let size = try HeldFiles.size(filePath)
        guard size == file.bytes else {
            throw TrainingError("\(filePath) is \(size) bytes but the manifest says \(file.bytes): it was changed or truncated; use an earlier checkpoint")
        }
        return try checked(HeldFiles.contents(filePath, limit: ReadLimits.checkpointFileBytes, what: "checkpoint file"),
                           against: file, path: filePath)
    }

    /// `bytes`, once they match the manifest's size and CRC-32 for `file` (read from `filePath`).
    static func checked(_ bytes: Data, against file: CheckpointManifest.File, path filePath: String) throws -> Data {
        guard bytes.count == file.bytes, crc(bytes) == file.crc32 else {
            throw TrainingError("\(filePath) does not match its checksum in the manifest (\(bytes.count) bytes, expected \(file.bytes)): it was changed or truncated; use an earlier checkpoint")
        }
        return bytes
    }

    /// The newest checkpoint of a run that validates, and the newer ones that did not (with why).
    public static func newestValid(run: String) throws -> (path: String, manifest: CheckpointManifest, skipped: [String]) {
        var skipped: [String] = []
        // A run that is still training writes new checkpoints and deletes old ones meanwhile: a
        // checkpoint whose folder went away while it was read was rotated, not damaged, and the
        // listing is read again (a few times) for the newer ones that took its place.
        var tried = Set<Int>()
        for _ in 0..<4 {
            let fresh = steps(run: run).reversed().filter { !tried.contains($0) }
            if fresh.isEmpty { break }
            for step in fresh {
                tried.insert(step)
                let path = directory(run: run, step: step)
                do { return (path, try validate(path), skipped) } catch {
                    if FileManager.default.fileExists(atPath: path) { skipped.append("\(error)") }
                }
            }
        }
        let why = skipped.isEmpty ? "there is no \(run)/checkpoints/step-*/\(manifestName)" : skipped.joined(separator: "; ")
        throw TrainingError("no valid checkpoint in \(run): \(why)")
    }

    /// Resolves `--checkpoint`/`--resume`: a checkpoint folder, or a run folder (its newest valid one).
    public static func resolve(_ path: String) throws -> (path: String, manifest: CheckpointManifest, skipped: [String]) {
        if FileManager.default.fileExists(atPath: "\(path)/\(manifestName)") { return (path, try validate(path), []) }
        if FileManager.default.fileExists(atPath: "\(path)/checkpoints") { return try newestValid(run: path) }
        throw TrainingError("\(path) is neither a checkpoint (no \(manifestName)) nor a run directory (no checkpoints/); pass a run directory or one of its checkpoints/step-* folders")
    }
}
