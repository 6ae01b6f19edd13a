import AlexNetCore
import Foundation

/// What `alexnet-split prepare` is asked to do.
public struct PrepareOptions: Sendable {
    public var source: String
    public var output: String
    /// S: each photo's shorter side is scaled to it, then the centre S x S kept (paper §2).
    public var imageSize = 256
    public var encoding = ShardEncoding.jpeg
    public var quality = 90
    public var valFraction: Double?
    public var valLabels: String?
    public var synsets: String?
    public var skipBadImages = false
    public var photosPerShard = 1024
    public var seed: UInt64 = 1
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// The bytes one thread may hold to decode and resize a photo (its file, its pixels, the
    /// resampling's floats); a photo that needs more stops with its name before it is decoded.
    public var bytesPerPhoto = ReadLimits.prepareBytesPerPhoto

    public init(source: String, output: String) {
        self.source = source
        self.output = output
    }
}

/// What a finished `prepare` did in this run.
public struct PrepareSummary: Sendable {
    public var manifest: ShardManifest
    /// Photos written by this run (a resumed run does not count what was done before).
    public var photosThisRun: Int
    public var seconds: Double
    public var threads: Int
    /// Bytes of the shards per photo.
    public var bytesPerPhoto: Double
    public var alreadyDone: Bool
}

/// Reads a class-per-folder tree and writes it as shards (see `ShardManifest`): every photo
/// decoded, scaled and centre-cropped to S x S, and encoded, on every core; the training split's
/// `PixelSums` gathered on the way. Each finished shard is recorded in a state file, so a run
/// that is stopped resumes where it stopped.
// @unchecked: the vars are touched only under `lock` while the workers run, and by the calling thread alone before and after.
public final class Prepare: @unchecked Sendable {
    /// One shard to write: its name and photos.
    struct Job {
        var name: String
        var items: [ImageFolder.Item]
        var isTrain: Bool
        /// A hash of its photos' sizes and modification times (`contentStamp`).
        var stamp = ""
    }

    /// What is done so far; saved after every shard.
    struct State: Codable {
        var fingerprint: String
        var done: [String: ShardManifest.ShardEntry] = [:]
        var skipped: [String: [String]] = [:]
    }

    let options: PrepareOptions
    /// Called on the worker threads (under `lock`, so never twice at once).
    let progress: @Sendable (String) -> Void
    /// The first worker's error, and the lock over every var while the workers run.
    private let lock = Guarded<Error?>(nil)
    private var state: State
    private var sums: PixelSums
    private var written = 0, total = 0
    private var started = 0.0, lastReport = 0.0
    /// Holds the output folder's lock for the life of this object.
    private var lockDescriptor: Int32 = -1

    public static func run(_ options: PrepareOptions, progress: @escaping @Sendable (String) -> Void) throws -> PrepareSummary {
        try Prepare(options: options, progress: progress).run()
    }

    init(options: PrepareOptions, progress: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.progress = progress
        state = State(fingerprint: "")
        sums = PixelSums(size: options.imageSize, channels: 3)
    }

    deinit { if lockDescriptor >= 0 { close(lockDescriptor) } }

    func run() throws -> PrepareSummary {
        let (jobs, classNames, fingerprint) = try plan()
        let manifest = ShardManifest(name: (options.source as NSString).lastPathComponent, imageSize: options.imageSize, channels: 3,
                                     encoding: options.encoding, quality: options.quality, classNames: classNames,
                                     fingerprint: fingerprint, train: [], val: [], skipped: [])
        if let finished = try checkOutput(fingerprint: fingerprint, jobs: jobs) {
            return PrepareSummary(manifest: finished, photosThisRun: 0, seconds: 0, threads: options.threads, bytesPerPhoto: 0, alreadyDone: true)
        }
        let pending = jobs.filter { state.done[$0.name] == nil }
        let resumedPhotos = jobs.filter { state.done[$0.name] != nil }.reduce(0) { $0 + $1.items.count }
        if resumedPhotos > 0 { progress("resuming: \(jobs.count - pending.count) of \(jobs.count) shards (\(resumedPhotos) photos) were written by an earlier run") }
        total = pending.reduce(0) { $0 + $1.items.count }
        started = monotonicSeconds()
        let threads = max(1, min(options.threads, pending.count))
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            for k in stride(from: worker, to: pending.count, by: threads) where lock.withLock({ $0 == nil }) {
                do { try write(pending[k]) } catch { lock.withLock { if $0 == nil { $0 = error } } }
            }
        }
        if let failure = lock.withLock({ $0 }) { throw failure }
        let seconds = monotonicSeconds() - started
        return try finish(manifest, jobs: jobs, seconds: seconds, threads: options.threads)
    }

    /// The shards to write, the class names, and a fingerprint of the whole request.
    func plan() throws -> (jobs: [Job], classNames: [String], fingerprint: String) {
        guard ImageFolder.isDirectory(options.source) else {
            throw DataError("no folder of photos at \(options.source): give prepare the folder that holds train/ and val/ (or one folder per class, with --val-fraction)")
        }
        let labels = try options.valLabels.map { try ValidationLabels(file: $0, synsets: options.synsets) }
        let (train, val, classNames) = try ImageFolder.files(
            directory: options.source, valFraction: options.valFraction, seed: options.seed,
            flatValidation: { folder, names in
                guard let labels else {
                    throw DataError("\(folder) is one flat folder of images (ILSVRC-2012's): pass --val-labels with the devkit's ILSVRC2012_validation_ground_truth.txt (and --synsets) or a CSV such as LOC_val_solution.csv")
                }
                return try labels.items(folder, classNames: names)
            })
        func jobs(_ items: [ImageFolder.Item], split: String) -> [Job] {
            stride(from: 0, to: items.count, by: options.photosPerShard).enumerated().map { number, first in
                let photos = Array(items[first..<min(first + options.photosPerShard, items.count)])
                return Job(name: String(format: "%@-%05d", split, number), items: photos, isTrain: split == "train",
                           stamp: Self.hash(photos.map { Self.contentStamp($0.path) }.joined(separator: "\n")))
            }
        }
        var request = "S\(options.imageSize) \(options.encoding.rawValue) q\(options.quality) per\(options.photosPerShard) classes \(classNames.joined(separator: ","))\n"
        // Paths relative to the source, so that the same folder given by another path (or moved) resumes.
        let prefix = (options.source as NSString).appendingPathComponent("x").dropLast()
        for (split, items) in [("train", train), ("val", val)] {
            for item in items { request += "\(split) \(item.label) \(item.path.hasPrefix(prefix) ? item.path.dropFirst(prefix.count) : item.path[...])\n" }
        }
        return (jobs(train, split: "train") + jobs(val, split: "val"), classNames, Self.hash(request))
    }

    /// FNV-1a of `text`, as 16 hex digits.
    static func hash(_ text: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return String(format: "%016llx", hash)
    }

    /// What a shard's stamp knows of a file's content without reading it: its size and its
    /// modification time to the nanosecond (as make and rsync judge a file changed). Other photos
    /// saved under the same names differ in one or both.
    static func contentStamp(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "unreadable" }
        return "\(info.st_size) bytes \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// Refuses an output folder that holds anything but this same data set; loads the state of
    /// a stopped run. Returns the manifest when the data set is already complete.
    func checkOutput(fingerprint: String, jobs: [Job]) throws -> ShardManifest? {
        let out = options.output as NSString
        try PrepareFolder.checkApart(output: options.output, source: options.source)
        lockDescriptor = try PrepareFolder.claim(options.output)
        let other = "holds another data set (a different source, other labels, S, encoding or shard size): choose a new folder, or remove it"
        if ShardSet.isShardSet(options.output) {
            let manifest = try ShardSet(directory: options.output).manifest
            guard manifest.fingerprint == fingerprint else { throw DataError("\(options.output) \(other)") }
            try checkStamps(jobs, written: Dictionary((manifest.train + manifest.val).map { ($0.name, $0) }) { a, _ in a }, finished: true)
            return manifest
        }
        let statePath = out.appendingPathComponent(ShardManifest.stateName)
        if FileManager.default.fileExists(atPath: statePath) {
            try loadState(statePath)
            guard state.fingerprint == fingerprint else { throw DataError("\(options.output) \(other)") }
            try checkStamps(jobs, written: state.done, finished: false)
            // Files a stopped run was writing when it stopped.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: options.output)) ?? [] where name.contains(".tmp-") {
                unlink(out.appendingPathComponent(name))
            }
        } else {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: options.output)) ?? []
            guard entries.filter({ !$0.hasPrefix(".") }).isEmpty else {
                throw DataError("\(options.output) is not empty and was not written by prepare: give prepare a new or empty folder")
            }
            state = State(fingerprint: fingerprint)
            try saveState()
        }
        return nil
    }

    /// Refuses shards written from files that have changed since (other photos saved under the
    /// same names): a finished set is then not this data set, and a stopped run's sums hold them.
    func checkStamps(_ jobs: [Job], written: [String: ShardManifest.ShardEntry], finished: Bool) throws {
        let changed = jobs.filter { job in written[job.name].map { $0.sources != job.stamp } ?? false }.map(\.name)
        guard let first = changed.first else { return }
        let what = finished ? "holds a data set made from other photos under the same names, or from files changed since it was written"
            : "holds a stopped prepare whose shards were made from other photos under the same names, or from files changed since"
        throw DataError("\(options.output) \(what) (\(changed.count) shard(s), first \(first): a size or modification time differs): choose a new folder, or remove it and prepare again")
    }

    /// The state file: an 8-byte length, the state as JSON, then the training sums so far.
    func saveState() throws {
        let json = try JSONEncoder().encode(state)
        var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        bytes += json
        bytes += sums.encoded()
        try ShardFiles.writeAtomically(bytes, to: (options.output as NSString).appendingPathComponent(ShardManifest.stateName))
    }

    func loadState(_ path: String) throws {
        let bytes = try ShardFiles.read(path)
        guard bytes.count >= 8 else { throw ShardFiles.damaged(path, "\(bytes.count) bytes") }
        let length = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(bytes.count - 8) else { throw ShardFiles.damaged(path, "a \(length)-byte header in \(bytes.count) bytes") }
        do {
            state = try JSONDecoder().decode(State.self, from: Data(bytes[8..<(8 + Int(length))]))
        } catch {
            throw ShardFiles.damaged(path, "its state does not parse")
        }
        sums = try PixelSums.decode(Array(bytes[(8 + Int(length))...]), source: path)
        guard sums.size == options.imageSize, sums.channels == 3 else { throw ShardFiles.damaged(path, "sums of side \(sums.size)") }
    }

    /// Writes one shard and its index, then records it as done.
    func write(_ job: Job) throws {
        var shard: [UInt8] = [], index: [UInt8] = [], skipped: [String] = []
        var local = PixelSums(size: options.imageSize, channels: 3)
        var photos = 0
        for item in job.items {
            let square: [UInt8]
            do {
                let data = try ReadLimits.contents(of: item.path, limit: ReadLimits.imageFileBytes, what: "image file")
                try checkBudget(data, path: item.path)
                square = Resample.shorterSideThenCentreCrop(try ImageFile.decode(data, path: item.path, channels: 3), size: options.imageSize)
            } catch {
                guard options.skipBadImages else { throw DataError("\(error) (pass --skip-bad-images to leave such files out)") }
                skipped.append("\(error)")
                continue
            }
            let stored = options.encoding == .raw ? square
                : try ImageEncoder.jpeg(square, width: options.imageSize, height: options.imageSize, channels: 3, quality: options.quality, subsampled: true)
            ShardRecord(offset: UInt64(shard.count), length: UInt32(stored.count), label: UInt32(item.label),
                        crc32: ShardFiles.crc32(stored), path: item.path).append(to: &index)
            shard += stored
            photos += 1
            if job.isTrain { square.withUnsafeBufferPointer { local.add($0) } }
            photoWritten()
        }
        let root = options.output as NSString
        try ShardFiles.writeAtomically(shard, to: root.appendingPathComponent(job.name + ".shard"))
        try ShardFiles.writeAtomically(index, to: root.appendingPathComponent(job.name + ".index"))
        let entry = ShardManifest.ShardEntry(name: job.name, photos: photos, bytes: shard.count, crc32: ShardFiles.crc32(shard),
                                             indexBytes: index.count, indexCRC32: ShardFiles.crc32(index), sources: job.stamp)
        try lock.withLock { _ in
            state.done[job.name] = entry
            state.skipped[job.name] = skipped.isEmpty ? nil : skipped
            if job.isTrain { sums.merge(local) }
            try saveState()
        }
    }

    /// What a photo needs to be decoded and resized, from its header, against `bytesPerPhoto`:
    /// its file twice (the JPEG decoder takes a copy), its pixels (four bytes each for CMYK, then
    /// three), and the resampling's floats, which grow with the aspect ratio's short side.
    func checkBudget(_ data: Data, path: String) throws {
        guard let (width, height) = ImageFile.dimensions(data), width >= 1, height >= 1,
              let pixels = ReadLimits.product([width, height], limit: ReadLimits.imagePixels) else { return }  // decode names what is wrong
        let need = 2 * data.count + 7 * pixels + Resample.workBytes(width: width, height: height, channels: 3, size: options.imageSize)
        guard need <= options.bytesPerPhoto else {
            throw DataError(String(format: "%@ (%d x %d pixels) needs about %.0f MiB to decode and scale to S = %d, more than the %.0f MiB a thread of prepare may use: scale it down or remove it, or pass fewer --threads (each thread gets a share of the memory)",
                                   path, width, height, Double(need) / 1_048_576, options.imageSize, Double(options.bytesPerPhoto) / 1_048_576))
        }
    }

    /// Counts a photo and, every two seconds, prints progress.
    private func photoWritten() {
        lock.withLock { _ in
            written += 1
            let now = monotonicSeconds()
            guard now - lastReport >= 2 || written == total else { return }
            lastReport = now
            let rate = Double(written) / max(now - started, 1e-9)
            progress(String(format: "%d/%d photos, %.0f images/s, ETA %@", written, total, rate,
                            formatSeconds(Double(total - written) / max(rate, 1e-9))))
        }
    }

    /// Writes the statistics and, last, the manifest; removes the state file.
    func finish(_ manifest: ShardManifest, jobs: [Job], seconds: Double, threads: Int) throws -> PrepareSummary {
        var manifest = manifest
        manifest.train = jobs.filter(\.isTrain).map { state.done[$0.name]! }
        manifest.val = jobs.filter { !$0.isTrain }.map { state.done[$0.name]! }
        manifest.skipped = jobs.flatMap { state.skipped[$0.name] ?? [] }
        guard manifest.train.reduce(0, { $0 + $1.photos }) > 0 else { throw DataError("no training photo of \(options.source) could be read") }
        guard manifest.val.reduce(0, { $0 + $1.photos }) > 0 else {
            throw DataError("no validation photo of \(options.source) could be read, and a set with nothing to test on gives no accuracy: replace the unreadable photos listed above, then run prepare again")
        }
        let root = options.output as NSString
        let statistics = sums.encoded()
        try ShardFiles.writeAtomically(statistics, to: root.appendingPathComponent(ShardManifest.statisticsName))
        manifest.statistics = ShardManifest.FileEntry(bytes: statistics.count, crc32: ShardFiles.crc32(statistics))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try ShardFiles.writeAtomically(Array(try encoder.encode(try manifest.sealed())), to: root.appendingPathComponent(ShardManifest.fileName))
        unlink(root.appendingPathComponent(ShardManifest.stateName))
        let entries = manifest.train + manifest.val
        let bytes = entries.reduce(0) { $0 + $1.bytes }, photos = entries.reduce(0) { $0 + $1.photos }
        return PrepareSummary(manifest: manifest, photosThisRun: written, seconds: seconds, threads: threads,
                              bytesPerPhoto: Double(bytes) / Double(max(photos, 1)), alreadyDone: false)
    }
}

/// "42 s", "3 min 5 s", "2 h 10 min".
func formatSeconds(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s) s" }
    if s < 3600 { return "\(s / 60) min \(s % 60) s" }
    return "\(s / 3600) h \(s % 3600 / 60) min"
}
