import AlexNetCore
import AlexNetData
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

    @Option(help: "S, the side of the stored squares (the paper's 256).")
    var imageSize = 256

    @Option(help: "JPEG quality, 1-100.")
    var quality = 90

    @Flag(help: "Store raw pixels instead of JPEG (no decoding when training; about ten times the disk space).")
    var raw = false

    @Option(help: "For a single folder of class folders: the share of each class held out for testing, seeded by --seed.")
    var valFraction: Double?

    @Option(help: "Labels of a flat val/ folder: the devkit's ILSVRC2012_validation_ground_truth.txt (with --synsets) or a CSV of ImageId,PredictionString such as LOC_val_solution.csv.")
    var valLabels: String?

    @Option(help: "With the devkit's ground truth: a file whose line k starts with the synset of ILSVRC2012_ID k (the devkit's data/meta.mat order).")
    var synsets: String?

    @Flag(help: "Leave out image files that cannot be read, and list them, instead of stopping.")
    var skipBadImages = false

    @Option(help: "Photos per shard file.")
    var shardSize = 1024

    @Option(help: "Seed of the --val-fraction hold-out.")
    var seed: UInt64 = 1

    @Option(help: "Threads (default: every core).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard (8...4096).contains(imageSize) else { throw ValidationError("--image-size must be between 8 and 4096 (got \(imageSize))") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be between 1 and 100 (got \(quality))") }
        guard shardSize >= 1 else { throw ValidationError("--shard-size must be at least 1 (got \(shardSize))") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
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
            let summary = try Prepare.run(options) { print("prepare: \($0)"); Console.flushOutput() }
            report(summary)
        } catch {
            throw RuntimeFailure("\(error)")
        }
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
