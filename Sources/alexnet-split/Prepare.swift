import AlexNetCore
import AlexNetData
import AlexNetTraining
import ArgumentParser
import Foundation

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Write a folder of photos once as shards that `train --data OUT` streams every epoch.",
        discussion: """
        SOURCE is a folder per class (train/<class>/*, val/<class>/*; or <class>/* with --val-fraction), or \
        ILSVRC-2012 as it comes: train/<synset>/* and one flat val/ folder labelled by --val-labels. Each photo's \
        shorter side is scaled to S and its centre S x S kept (the paper's preparation), and stored as JPEG. \
        Runs on every core; run it again to resume a stopped run. See docs/imagenet.md.
        """)

    @Argument(help: "The folder of photos.")
    var source: String

    @Argument(help: "The folder to write (new or empty, or a stopped prepare of the same data to resume).")
    var output: String

    @Option(parsing: .unconditional, help: "S, the side of the stored squares (the paper's 256).")
    var imageSize = 256

    @Option(parsing: .unconditional, help: "JPEG quality, 1-100.")
    var quality = 90

    @Flag(help: "Store raw pixels instead of JPEG (no decoding when training; about ten times the disk space).")
    var raw = false

    @Option(parsing: .unconditional, help: "For a single folder of class folders: the share of each class held out for testing, seeded by --seed.")
    var valFraction: Double?

    @Option(parsing: .unconditional, help: "Labels of a flat val/ folder: the devkit's ILSVRC2012_validation_ground_truth.txt (with --synsets) or a CSV of ImageId,PredictionString such as LOC_val_solution.csv.")
    var valLabels: String?

    @Option(parsing: .unconditional, help: "With the devkit's ground truth: a file whose line k starts with the synset of ILSVRC2012_ID k (the devkit's data/meta.mat order).")
    var synsets: String?

    @Flag(help: "Leave out image files that cannot be read, and list them, instead of stopping.")
    var skipBadImages = false

    @Option(parsing: .unconditional, help: "Photos per shard file (at most \(Self.maxShardSize); each thread holds its shard in memory while it writes it).")
    var shardSize = 1024

    @Option(parsing: .unconditional, help: "Seed of the --val-fraction hold-out (0 to 2^64-1).", transform: OptimiserFlags.parseSeed)
    var seed: UInt64 = 1

    @Option(parsing: .unconditional, help: "Threads (default: every core; at most \(Self.maxThreads)).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    /// A shard is built in memory by one thread: 100,000 photos of S = 256 are about 1.8 GB as JPEG.
    static let maxShardSize = 100_000
    static let maxThreads = 256

    func validate() throws {
        guard (8...4096).contains(imageSize) else { throw ValidationError("--image-size must be between 8 and 4096 (got \(imageSize))") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be between 1 and 100 (got \(quality))") }
        guard (1...Self.maxShardSize).contains(shardSize) else {
            throw ValidationError("--shard-size must be from 1 to \(Self.maxShardSize) photos (got \(shardSize))")
        }
        guard (1...Self.maxThreads).contains(threads) else { throw ValidationError("--threads must be from 1 to \(Self.maxThreads) (got \(threads))") }
        if let valFraction, !(valFraction > 0 && valFraction < 1) {
            throw ValidationError("--val-fraction must be between 0 and 1, e.g. 0.1 (got \(valFraction))")
        }
        if synsets != nil && valLabels == nil { throw ValidationError("--synsets goes with --val-labels") }
    }

    func run() throws {
        var options = PrepareOptions(source: source, output: output)
        options.imageSize = imageSize
        options.quality = quality
        options.encoding = raw ? .raw : .jpeg
        options.valFraction = valFraction
        options.valLabels = valLabels
        options.synsets = synsets
        options.skipBadImages = skipBadImages
        options.photosPerShard = shardSize
        options.seed = seed
        options.threads = threads
        do {
            options.bytesPerPhoto = try admitMemory()
            let summary = try Prepare.run(options) { print("prepare: \($0)"); Console.flushOutput() }
            report(summary)
        } catch let failure as RuntimeFailure {
            throw failure
        } catch {
            throw RuntimeFailure("\(error)")
        }
    }

    /// Memory admission for prepare: each thread holds the shard it writes (at most --shard-size
    /// raw squares) and one photo being decoded; the photos' share of what this host gives is
    /// what a photo may take (`PrepareOptions.bytesPerPhoto`), checked photo by photo.
    func admitMemory() throws -> Int {
        let limit = MemoryLimit.current()
        let shard = Double(shardSize) * Double(imageSize * imageSize * 3 + 64)
        let smallest = 64.0 * 1_048_576, base = 64.0 * 1_048_576
        let perThread = (limit.bytes - base) / Double(threads) - shard
        guard perThread >= smallest else {
            let need = base + Double(threads) * (shard + smallest)
            throw RuntimeFailure("prepare on \(threads) thread(s) with --shard-size \(shardSize) at S = \(imageSize) needs about \(formatBytes(need)) (each thread holds its shard of up to \(formatBytes(shard)) and a photo being decoded), but \(formatBytes(limit.bytes)) is available (\(limit.source)): pass fewer --threads or a smaller --shard-size", status: .doesNotFit)
        }
        return Int(min(Double(ReadLimits.prepareBytesPerPhoto), perThread))
    }

    func report(_ summary: PrepareSummary) {
        let m = summary.manifest
        let train = m.train.reduce(0) { $0 + $1.photos }, val = m.val.reduce(0) { $0 + $1.photos }
        guard !summary.alreadyDone else {
            print("\(output) already holds this data set, complete (\(train) train, \(val) val photos); nothing to do")
            return
        }
        let rate = Double(summary.photosThisRun) / max(summary.seconds, 1e-9)
        print(String(format: "prepared %@: %d train, %d val photos, %d classes, S=%d, %@; %.0f bytes per photo on disk",
                     output, train, val, m.classNames.count, m.imageSize, m.encoding == .raw ? "raw" : "JPEG q\(m.quality)", summary.bytesPerPhoto))
        print(String(format: "%d photos in %.1f s: %.0f photos/s, %.0f photos/s per core on %d threads", summary.photosThisRun,
                     summary.seconds, rate, rate / Double(summary.threads), summary.threads))
        // On a shared machine the wall clock undercounts a core's rate; CPU time does not.
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
        print(String(format: "%.0f photos per CPU-second (%.1f s of CPU time)", Double(summary.photosThisRun) / max(cpu, 1e-9), cpu))
        if !m.skipped.isEmpty {
            print("skipped \(m.skipped.count) unreadable image(s) (--skip-bad-images):")
            for why in m.skipped.prefix(20) { print("  \(why)") }
            if m.skipped.count > 20 { print("  ... and \(m.skipped.count - 20) more (all in \(output)/dataset.json)") }
        }
    }
}
