import AlexNetComm
import AlexNetCore
import AlexNetData
import Foundation

/// A training job as memory admission sees it: enough to size every buffer before any is made.
public struct MemoryJob: Sendable {
    public var preset: Preset
    public var model: ModelKind
    /// Classes of the last layer (a guess before the data is read is fine: fc8 is small).
    public var classes = 10
    /// The global batch, split over `replicas`.
    public var batchSize: Int
    public var replicas = 1
    /// Ranks of this job on this host: every rank with --simulate (threads of one process), else
    /// mpirun's ranks on this host.
    public var ranksHere: Int
    /// Processes of this job on this host (1 with --simulate).
    public var processesHere = 1
    /// Whether the coordinator (rank 0, which holds the data) is on this host.
    public var coordinatorHere = true
    /// The data set as rank 0 holds it in memory (see `DataFootprint`).
    public var dataBytes = 0.0
    /// Whether the coordinator prepares the next batch in the background (a second batch held).
    public var prefetch = true
    /// Whether the job writes checkpoints or weights (copies of them while they are encoded).
    public var writesWeights = true
    /// The Winograd output tiles the convolutions may build (`--conv-algorithm`): their
    /// transforms' buffers are counted (`MemoryEstimate`).
    public var winogradTiles: [Int] = []
    /// How replicas share the model; nil when not known yet (a resume reads it from the
    /// checkpoint later): then the larger of the two layouts' needs is counted.
    public var replicaLayout: ReplicaLayoutKind? = .hybrid

    public init(preset: Preset, model: ModelKind, batchSize: Int, ranksHere: Int) {
        self.preset = preset
        self.model = model
        self.batchSize = batchSize
        self.ranksHere = ranksHere
    }
}

/// What a job needs on one host, by kind, in bytes.
public struct MemoryNeed: Sendable {
    /// One rank's network (weights, gradients, momentum, activations, workspaces) and its
    /// received hand-out records, times the ranks here.
    public var networks = 0.0
    /// The replicas' gradient-sum buffers (BucketedGradientSum), for every rank here.
    public var replicaReduction = 0.0
    /// The data set, the prefetched records and, with replicas, every rank's share packed for
    /// the scatter, on the coordinator's host.
    public var coordinator = 0.0
    /// A checkpoint's copies of the weights and momentum while it is encoded and written
    /// (Checkpoint.save), on the ranks of replica 0: two floats per parameter as arrays, two in the file's bytes.
    public var checkpoint = 0.0
    /// The runtime, libraries, OpenBLAS's buffers and the threads' stacks, per process.
    public var processes = 0.0

    public var total: Double { networks + replicaReduction + coordinator + checkpoint + processes }
}

/// Memory admission: before anything is allocated, the job's need on this host is set against
/// the memory it may use; a job that does not fit stops at once with one line that gives the
/// need, the limit, the largest batch that fits and other fixes.
public enum MemoryAdmission {
    /// What one process takes before the model: the Swift runtime, Foundation, OpenBLAS's
    /// per-thread buffers, MPI. Measured as VmHWM of `train --preset tiny` less its data (about 60 MiB under
    /// --simulate); see docs/reliability.md.
    static let processBase = 64.0 * 1_048_576
    /// The stack pages a simulated rank's thread touches (it reserves 64 MiB of address
    /// space, InProcessGroup.swift, but that is not memory).
    static let threadStack = 1.0 * 1_048_576

    /// The need of `job` at global batch `batch`.
    public static func need(_ job: MemoryJob, batch: Int) throws -> MemoryNeed {
        let plan = try NetworkPlan(spec: job.preset.spec(classes: max(job.classes, 2)), model: job.model)
        let perReplica = max(1, batch / max(job.replicas, 1))
        let input = plan.spec.input
        var need = MemoryNeed()
        if plan.towers == 1 {
            // A one-tower model runs on rank 0 alone (the other ranks sleep).
            if job.coordinatorHere {
                let whole = MemoryEstimate(stages: try plan.stages(ranks: 1), input: input, batch: batch, winogradTiles: job.winogradTiles)
                need.networks = whole.total
                need.checkpoint = job.writesWeights ? whole.parameters * 4 / 3 : 0
            }
        } else {
            // Rank 0 holds the larger share of fc8 when the classes are odd. In the hybrid layout
            // its slice of the fully-connected layers is 1/R of its tower's, for the whole batch.
            let rank = MemoryEstimate(stages: try plan.stages(ranks: plan.towers), input: input, batch: perReplica, winogradTiles: job.winogradTiles)
            var network = rank.total
            if job.replicas > 1 && job.replicaLayout != .data {
                let position = HybridPosition(tower: 0, replica: 0, replicas: job.replicas)
                let hybrid = MemoryEstimate(stages: try plan.hybridStages(at: position), input: input, batch: perReplica,
                                            replicas: job.replicas, winogradTiles: job.winogradTiles).total
                network = job.replicaLayout == .hybrid ? hybrid : max(hybrid, network)
            }
            need.networks = network * Double(job.ranksHere)
            need.checkpoint = job.writesWeights ? rank.parameters * 4 / 3 * Double(min(job.ranksHere, plan.towers)) : 0
            if job.replicas > 1 {
                // The scratch slots of the bucketed sum: send, received and gathered, per rank.
                let floats = Double(BucketedGradientSum.scratchFloats(ranks: job.replicas))
                need.replicaReduction = floats * 4 * Double(job.ranksHere)
            }
        }
        // A hand-out record (stored bytes and draws) is bounded by the float input it becomes
        // for the paper's crops (S = input x 256/227 bytes a side against 4 bytes a float).
        let sample = Double(input.size) * 4 + 4
        // Every rank's received records, for training and for testing.
        need.networks += 2 * Double(perReplica) * sample * Double(job.ranksHere)
        // Testing's per-class tables: the logits copied out, and with --ten-crop the averaged
        // softmax in Doubles, [classes, batch] each (TestEvaluation.swift).
        need.networks += Double(max(job.classes, 2)) * Double(perReplica) * (4 + 8) * Double(job.ranksHere)
        if job.coordinatorHere {
            let prefetched = job.prefetch ? Double(perReplica) * sample : 0
            let staged = job.replicas > 1 ? Double(plan.towers) * Double(job.replicas) * Double(perReplica) * sample : 0
            need.coordinator = job.dataBytes + prefetched + staged
        }
        need.processes = processBase * Double(job.processesHere) + threadStack * Double(job.ranksHere)
        return need
    }

    /// The largest global batch (a multiple of the replicas, at most `job.batchSize`) whose
    /// need fits in `limit`, or nil when not even the smallest does.
    public static func largestBatch(_ job: MemoryJob, fitting limit: Double) throws -> Int? {
        let step = max(job.replicas, 1)
        var (low, high) = (0, job.batchSize / step)  // in units of `step`; low fits (0 means none)
        guard try need(job, batch: step).total <= limit else { return nil }
        low = 1
        while low < high {
            let middle = low + (high - low + 1) / 2
            if try need(job, batch: middle * step).total <= limit { low = middle } else { high = middle - 1 }
        }
        return low * step
    }

    /// Nil when `job` fits in `limit`; otherwise the one line that says so and how to fix it.
    public static func refusal(_ job: MemoryJob, limit: MemoryLimit) throws -> String? {
        let need = try need(job, batch: job.batchSize)
        guard need.total > limit.bytes else { return nil }
        var fixes: [String] = []
        if let batch = try largestBatch(job, fitting: limit.bytes) {
            fixes.append("the largest --batch-size that fits is \(batch)")
        } else {
            fixes.append("not even --batch-size \(max(job.replicas, 1)) fits")
        }
        if job.replicas > 1 && job.ranksHere > 2 { fixes.append("fewer --replicas") }
        if job.preset != .small && job.preset != .tiny { fixes.append("a smaller --preset (small)") }
        fixes.append("more ranks on more hosts (mpirun -np 2R across hosts gives each rank 1/R of the batch)")
        let where_ = job.ranksHere == 1 ? "this rank" : "the \(job.ranksHere) ranks on this host"
        return "\(job.preset.rawValue)/\(job.model.rawValue) at --batch-size \(job.batchSize) needs about \(formatBytes(need.total)) for \(where_) (\(describe(need))), but \(formatBytes(limit.bytes)) is available (\(limit.source)): " + fixes.joined(separator: "; or ")
    }

    static func describe(_ need: MemoryNeed) -> String {
        var parts = ["networks \(formatBytes(need.networks))"]
        if need.replicaReduction > 0 { parts.append("replica sums \(formatBytes(need.replicaReduction))") }
        if need.coordinator > 0 { parts.append("data and batches \(formatBytes(need.coordinator))") }
        if need.checkpoint > 0 { parts.append("checkpoint copies \(formatBytes(need.checkpoint))") }
        parts.append("processes \(formatBytes(need.processes))")
        return parts.joined(separator: ", ")
    }
}

/// The memory this host lets a job use, and what set it.
public struct MemoryLimit: Sendable {
    public var bytes: Double
    public var source: String

    public init(bytes: Double, source: String) {
        self.bytes = bytes
        self.source = source
    }

    /// The smallest of MemAvailable (/proc/meminfo), the room left under this process's cgroup
    /// limit (v2 memory.max, or v1 memory.limit_in_bytes) and ALEXNET_SPLIT_MEMORY_LIMIT (bytes, or
    /// with a K, M, G or T suffix), for users who share a machine and for tests.
    public static func current() -> MemoryLimit {
        var candidates: [MemoryLimit] = []
        if let available = meminfo("MemAvailable") { candidates.append(MemoryLimit(bytes: available, source: "MemAvailable in /proc/meminfo")) }
        if let room = cgroupRoom() { candidates.append(room) }
        if let text = ProcessInfo.processInfo.environment["ALEXNET_SPLIT_MEMORY_LIMIT"], let bytes = parseBytes(text) {
            candidates.append(MemoryLimit(bytes: bytes, source: "ALEXNET_SPLIT_MEMORY_LIMIT=\(text)"))
        }
        return candidates.min { $0.bytes < $1.bytes } ?? MemoryLimit(bytes: .infinity, source: "no limit found")
    }

    /// A field of /proc/meminfo, in bytes.
    static func meminfo(_ field: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kB = Double(parts[1]) { return kB * 1024 }
        }
        return nil
    }

    /// The cgroup limit minus what the cgroup already uses, when there is a limit.
    static func cgroupRoom() -> MemoryLimit? {
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) }
        // v2: "0::/path" in /proc/self/cgroup; v1 mounts the memory controller on its own.
        var candidates: [(limit: String, usage: String)] = []
        if let own = read("/proc/self/cgroup")?.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            let path = "/sys/fs/cgroup" + own.dropFirst(3)
            candidates.append((path + "/memory.max", path + "/memory.current"))
        }
        candidates.append(("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"))
        candidates.append(("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
        for (limitPath, usagePath) in candidates {
            // "max" (v2) or a number near 2^63 (v1) means no limit.
            guard let text = read(limitPath), let limit = Double(text), limit < 1e18 else { continue }
            let usage = read(usagePath).flatMap(Double.init) ?? 0
            return MemoryLimit(bytes: max(limit - usage, 0), source: "the cgroup limit \(formatBytes(limit)) in \(limitPath), of which \(formatBytes(usage)) is in use")
        }
        return nil
    }

    /// `123`, `4K`, `16M`, `2G`, `1T` (powers of 1024), or nil.
    public static func parseBytes(_ text: String) -> Double? {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
        if let last = trimmed.last, let unit = units[last] {
            return Double(trimmed.dropLast()).map { $0 * unit }
        }
        return Double(trimmed)
    }
}

/// The peak resident memory of this process so far (VmHWM in /proc/self/status), in bytes.
public func peakResidentBytes() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kB = Double(parts[1]) { return kB * 1024 }
    }
    return nil
}

/// The bytes rank 0 will hold for a data set, worked out from file sizes and counts before a
/// single image is read: raw IDX and CIFAR files hold one byte per pixel (gzip files say their
/// unpacked size in their last four bytes); photos are stored as S x S colour squares. Data that
/// cannot be found counts as nothing: reading it then fails with its own error.
public enum DataFootprint {
    public static func estimate(directory: String, settings: DataSettings, preset: Preset) -> Double {
        guard let format = try? settings.format ?? DataFormat.detect(directory) else { return 0 }
        let preprocessing = settings.preprocessing(for: format)
        let side = settings.storedSize(input: preset.spec(classes: 1).input.height, preprocessing: preprocessing)
        let files = allFiles(directory)
        switch format {
        case .idx:
            let bytes = files.filter { $0.contains("images") }.reduce(0.0) { $0 + unpackedSize($1) }
            // Grey 28x28 images, re-stored as S x S squares under --preprocess paper.
            return preprocessing == .paper ? bytes / 784 * Double(side * side) : bytes
        case .cifar10, .cifar100:
            let bytes = files.filter { $0.hasSuffix(".bin") }.reduce(0.0) { $0 + unpackedSize($1) }
            return preprocessing == .paper ? bytes / 3073 * Double(side * side * 3) : bytes
        case .folder:
            return Double(files.count) * Double(side * side * 3)
        case .shards:
            // Prepared shards are streamed from disk, a shard at a time, not held whole.
            return 0
        }
    }

    /// Every regular file under `directory` (its class folders included).
    static func allFiles(_ directory: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let name = walker.nextObject() as? String {
            if !(name as NSString).lastPathComponent.hasPrefix(".") { files.append(directory + "/" + name) }
        }
        return files.filter { path in
            var directory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && !directory.boolValue
        }
    }

    /// A file's size, or for gzip its unpacked size (ISIZE, the last four bytes, modulo 2^32).
    static func unpackedSize(_ path: String) -> Double {
        guard let handle = FileHandle(forReadingAtPath: path) else { return 0 }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        guard path.hasSuffix(".gz"), size >= 4 else { return Double(size) }
        try? handle.seek(toOffset: size - 4)
        guard let tail = try? handle.read(upToCount: 4), tail.count == 4 else { return Double(size) }
        return Double(tail.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }
}

extension DataFootprint {
    /// The classes the data will have, guessed from its layout before it is read (fc8's size):
    /// 100 for CIFAR-100, the class folders of a folder of photos, else 10.
    public static func classes(directory: String, settings: DataSettings) -> Int {
        guard let format = try? settings.format ?? DataFormat.detect(directory) else { return 10 }
        switch format {
        case .cifar100: return 100
        case .folder:
            let train = directory + "/train"
            let root = FileManager.default.fileExists(atPath: train) ? train : directory
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            return max(2, names.filter { !$0.hasPrefix(".") }.count)
        case .shards:
            // The manifest says, checked as the run will read it.
            let path = (directory as NSString).appendingPathComponent(ShardManifest.fileName)
            guard let data = try? ReadLimits.contents(of: path, limit: ShardManifest.maxBytes, what: "shard manifest"),
                  let manifest = try? ShardManifest.decode(data, path: path) else { return 10 }
            return max(2, manifest.classNames.count)
        default: return 10
        }
    }
}
