import AlexNetData
import Foundation
import XCTest

/// `prepare`'s shards: what goes in comes out, damage is found, a stopped run resumes, and the
/// read-ahead holds no more than its window.
final class ShardTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "shards-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Tinted noise of `width x height`, different for every (label, i).
    func photo(label: Int, i: Int, width: Int = 30, height: Int = 22) -> [UInt8] {
        var state = UInt64(label * 1000 + i + 1)
        return (0..<(width * height * 3)).map { p in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8((p % 3 == label % 3 ? 150 : 40) + Int(state >> 58))
        }
    }

    /// `data/{train,val}/<class>/`: PNGs (exact) of 30x22, `perClass` and 2 per class.
    func writeFolder(classes: [String] = ["ant", "bee", "cow", "dog"], perClass: Int = 5) throws -> String {
        for (split, count) in [("train", perClass), ("val", 2)] {
            for (label, name) in classes.enumerated() {
                let folder = "\(root)/data/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<count {
                    try ImageEncoder.writePNG(photo(label: label, i: split == "train" ? i : 100 + i), width: 30, height: 22, channels: 3,
                                              to: "\(folder)/\(i).png")
                }
            }
        }
        return "\(root)/data"
    }

    func prepare(_ source: String, _ out: String, size: Int = 20, raw: Bool = false, perShard: Int = 6, threads: Int = 2,
                 edit: (inout PrepareOptions) -> Void = { _ in }) throws -> PrepareSummary {
        var options = PrepareOptions(source: source, output: out)
        options.imageSize = size
        options.encoding = raw ? .raw : .jpeg
        options.photosPerShard = perShard
        options.threads = threads
        edit(&options)
        return try Prepare.run(options) { _ in }
    }

    func testRawShardsHoldExactlyWhatTheInMemoryFolderHolds() throws {
        let source = try writeFolder()
        let summary = try prepare(source, "\(root)/raw", raw: true)
        XCTAssertEqual(summary.manifest.train.count, 4, "20 photos in shards of 6")
        let shards = try ShardSet(directory: "\(root)/raw")
        var options = DataLoadOptions()
        options.imageSize = 20
        let folder = try ImageFolder.load(directory: source, options: options)
        let streamed = try shards.train.decodeAll(limit: nil, threads: 2)
        XCTAssertEqual(streamed.labels, folder.train.labels, "the same files in the same (interleaved) order")
        XCTAssertEqual(streamed.pixels, folder.train.pixels, "raw shards store the resized squares byte for byte")
        XCTAssertEqual(try shards.val.decodeAll(limit: nil, threads: 1).pixels, folder.test.pixels)
        XCTAssertEqual(PhotoStatistics.compute(shards.pixelSums, meanKind: .pixel), PhotoStatistics.compute(folder.train, meanKind: .pixel),
                       "the sums gathered while writing give the statistics of the decoded training set")
        let index = try XCTUnwrap(FileManager.default.contents(atPath: "\(root)/raw/train-00000.index"))
        let records = try ShardRecord.parse(Array(index), shardBytes: shards.manifest.train[0].bytes, classes: 4, maxPhotoBytes: 1200, source: "index")
        XCTAssertEqual(records.first?.path, "\(source)/train/ant/0.png", "the index names each photo's source")
    }

    func testJPEGShardsDecodeCloseToTheSquaresAndKeepTheirLabels() throws {
        let source = try writeFolder()
        _ = try prepare(source, "\(root)/jpeg")
        _ = try prepare(source, "\(root)/raw", raw: true)
        let jpeg = try ShardSet(directory: "\(root)/jpeg"), raw = try ShardSet(directory: "\(root)/raw")
        XCTAssertEqual(jpeg.manifest.quality, 90)
        XCTAssertEqual(jpeg.train.labels, raw.train.labels)
        for i in [0, 7, 19] {
            let (a, b) = (try jpeg.train.pixels(i), try raw.train.pixels(i))
            let meanError = zip(a, b).map { abs(Double($0) - Double($1)) }.reduce(0, +) / Double(a.count)
            XCTAssertLessThan(meanError, 12, "photo \(i): JPEG q90 with 4:2:0 chroma stays close to the square")
        }
        XCTAssertEqual(jpeg.pixelSums, raw.pixelSums, "statistics come from the squares before encoding")
    }

    func testDamagedShardsAndIndexesAreFoundWithTheirNames() throws {
        _ = try prepare(try writeFolder(), "\(root)/set")
        let shard = "\(root)/set/train-00001.shard", index = "\(root)/set/train-00001.index"
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: shard))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: shard))
        let set = try ShardSet(directory: "\(root)/set")
        let damaged = (6..<12).compactMap { i -> String? in
            do { _ = try set.train.pixels(i); return nil } catch { return "\(error)" }
        }
        XCTAssertEqual(damaged.count, 1, "one photo's checksum fails: \(damaged)")
        XCTAssertTrue(damaged.first?.contains("train-00001.shard is damaged") == true, "\(damaged)")
        XCTAssertThrowsError(try set.load(trainLimit: nil, testLimit: nil)) { XCTAssertTrue("\($0)".contains("train-00001.shard"), "\($0)") }

        var indexBytes = try XCTUnwrap(FileManager.default.contents(atPath: index))
        // A record that claims 4 GB: refused by the checksum, and by the size check without it.
        indexBytes.replaceSubrange(8..<12, with: [0xFF, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try ShardRecord.parse(Array(indexBytes), shardBytes: bytes.count, classes: 4, maxPhotoBytes: 5000, source: "x.index")) {
            XCTAssertTrue("\($0)".contains("claims 4294967295 bytes"), "\($0)")
        }
        try indexBytes.write(to: URL(fileURLWithPath: index))
        XCTAssertThrowsError(try ShardSet(directory: "\(root)/set")) { XCTAssertTrue("\($0)".contains("train-00001.index is damaged"), "\($0)") }
        try indexBytes.prefix(30).write(to: URL(fileURLWithPath: index))
        XCTAssertThrowsError(try ShardSet(directory: "\(root)/set")) { XCTAssertTrue("\($0)".contains("the manifest says"), "\($0)") }
        try Data("{\"version\": 1}".utf8).write(to: URL(fileURLWithPath: "\(root)/set/dataset.json"))
        XCTAssertThrowsError(try ShardSet(directory: "\(root)/set")) { XCTAssertTrue("\($0)".contains("dataset.json is damaged"), "\($0)") }
    }

    func testAStoppedPrepareResumesToTheSameFiles() throws {
        let source = try writeFolder()
        _ = try prepare(source, "\(root)/whole", threads: 1)
        // The last training shard holds a broken file: the run stops there with its name.
        let victim = "\(source)/train/dog/4.png"
        let good = try XCTUnwrap(FileManager.default.contents(atPath: victim))
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2]).write(to: URL(fileURLWithPath: victim))
        XCTAssertThrowsError(try prepare(source, "\(root)/resumed", threads: 1)) {
            XCTAssertTrue("\($0)".contains("dog/4.png") && "\($0)".contains("--skip-bad-images"), "\($0)")
        }
        XCTAssertFalse(ShardSet.isShardSet("\(root)/resumed"))
        XCTAssertTrue(ShardSet.isUnfinished("\(root)/resumed"))
        XCTAssertThrowsError(try DataFormat.detect("\(root)/resumed")) { XCTAssertTrue("\($0)".contains("has not finished"), "\($0)") }
        try good.write(to: URL(fileURLWithPath: victim))
        let resumed = try prepare(source + "/", "\(root)/resumed", threads: 1)  // the same folder, written another way
        XCTAssertEqual(resumed.photosThisRun, 2 + 8, "only the last training shard (2 photos) and the validation shards are written again")
        // The manifests differ only in the rewritten file's stamp (its modification time).
        func withoutStamps(_ set: String) throws -> ShardManifest {
            var manifest = try ShardSet(directory: set).manifest
            manifest.checksum = nil
            for k in manifest.train.indices { manifest.train[k].sources = nil }
            for k in manifest.val.indices { manifest.val[k].sources = nil }
            return manifest
        }
        XCTAssertEqual(try withoutStamps("\(root)/whole"), try withoutStamps("\(root)/resumed"))
        for name in ["statistics.bin", "train-00000.shard", "train-00003.shard", "train-00003.index", "val-00001.shard"] {
            XCTAssertEqual(FileManager.default.contents(atPath: "\(root)/whole/\(name)"), FileManager.default.contents(atPath: "\(root)/resumed/\(name)"), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(root)/resumed/\(ShardManifest.stateName)"))
        XCTAssertTrue(try prepare(source, "\(root)/resumed").alreadyDone, "a finished set is left as it is")
    }

    func testSkippedPhotosAreListedAndOtherDataIsRefused() throws {
        let source = try writeFolder()
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(source)/train/bee/zz.png"))
        let summary = try prepare(source, "\(root)/set") { $0.skipBadImages = true }
        XCTAssertEqual(summary.manifest.skipped.count, 1)
        XCTAssertTrue(summary.manifest.skipped[0].contains("zz.png"), summary.manifest.skipped[0])
        XCTAssertEqual(try ShardSet(directory: "\(root)/set").train.count, 20)
        XCTAssertThrowsError(try prepare(source, "\(root)/set", size: 24) { $0.skipBadImages = true }) {
            XCTAssertTrue("\($0)".contains("holds another data set"), "\($0)")
        }
        try FileManager.default.createDirectory(atPath: "\(root)/busy", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: "\(root)/busy/notes.txt"))
        XCTAssertThrowsError(try prepare(source, "\(root)/busy")) { XCTAssertTrue("\($0)".contains("is not empty"), "\($0)") }
        XCTAssertThrowsError(try prepare(source, "\(source)/train/shards")) { XCTAssertTrue("\($0)".contains("lies inside"), "\($0)") }
    }

    /// ILSVRC-2012's validation folder: flat, labelled by the devkit's ground truth (with its
    /// own class numbering) or by Kaggle's CSV; a CMYK JPEG and a PNG named .JPEG among them.
    func testAFlatValidationFolderTakesItsLabelsFromEitherFile() throws {
        let synsets = ["n01440764", "n01443537", "n01484850", "n01491361"]
        for (label, synset) in synsets.enumerated() {
            try FileManager.default.createDirectory(atPath: "\(root)/ilsvrc/train/\(synset)", withIntermediateDirectories: true)
            for i in 0..<3 {
                try ImageEncoder.writeJPEG(photo(label: label, i: i), width: 30, height: 22, channels: 3, quality: 90,
                                           to: "\(root)/ilsvrc/train/\(synset)/\(synset)_\(i).JPEG")
            }
        }
        try FileManager.default.createDirectory(atPath: "\(root)/ilsvrc/val", withIntermediateDirectories: true)
        let truth = [2, 0, 3, 1, 1, 2]  // sorted places of val 1...6
        let devkitOrder = [3, 1, 0, 2]  // ILSVRC2012_ID k is the synset at sorted place devkitOrder[k - 1]
        for (k, label) in truth.enumerated() {
            let path = "\(root)/ilsvrc/val/ILSVRC2012_val_\(String(format: "%08d", k + 1)).JPEG"
            let pixels = photo(label: label, i: 50 + k)
            if k == 0 {  // CMYK, stored inverted as Adobe does
                var cmyk = [UInt8]()
                for p in 0..<(30 * 22) { cmyk += [pixels[3 * p], pixels[3 * p + 1], pixels[3 * p + 2], 255] }
                try Data(try ImageEncoder.jpeg(cmyk, width: 30, height: 22, channels: 4, quality: 95, subsampled: false))
                    .write(to: URL(fileURLWithPath: path))
            } else if k == 1 {
                try ImageEncoder.writePNG(pixels, width: 30, height: 22, channels: 3, to: path)
            } else {
                try ImageEncoder.writeJPEG(pixels, width: 30, height: 22, channels: 3, quality: 90, to: path)
            }
        }
        let groundTruth = truth.map { label in String(devkitOrder.firstIndex(of: label)! + 1) }.joined(separator: "\n")
        try Data(groundTruth.utf8).write(to: URL(fileURLWithPath: "\(root)/gt.txt"))
        try Data(devkitOrder.map { "\(synsets[$0]) some words, more words" }.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: "\(root)/synsets.txt"))
        let csv = "ImageId,PredictionString\n" + truth.enumerated().map { k, label in
            "ILSVRC2012_val_\(String(format: "%08d", k + 1)),\(synsets[label]) 1 2 30 22 \(synsets[label]) 0 0 5 5"
        }.joined(separator: "\n")
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(root)/LOC_val_solution.csv"))

        XCTAssertThrowsError(try prepare("\(root)/ilsvrc", "\(root)/none")) { XCTAssertTrue("\($0)".contains("--val-labels"), "\($0)") }
        XCTAssertThrowsError(try prepare("\(root)/ilsvrc", "\(root)/none") { $0.valLabels = "\(root)/gt.txt" }) {
            XCTAssertTrue("\($0)".contains("--synsets"), "\($0)")
        }
        _ = try prepare("\(root)/ilsvrc", "\(root)/devkit", raw: true) { ($0.valLabels, $0.synsets) = ("\(root)/gt.txt", "\(root)/synsets.txt") }
        _ = try prepare("\(root)/ilsvrc", "\(root)/kaggle", raw: true) { $0.valLabels = "\(root)/LOC_val_solution.csv" }
        for name in ["devkit", "kaggle"] {
            let set = try ShardSet(directory: "\(root)/\(name)")
            XCTAssertEqual(set.manifest.classNames, synsets, "class order: the sorted synsets")
            XCTAssertEqual(set.val.labels, truth.map(Int32.init), name)
            let cmyk = try set.val.pixels(0)
            let means = (0..<3).map { c in stride(from: c, to: cmyk.count, by: 3).map { Double(cmyk[$0]) }.reduce(0, +) / Double(cmyk.count / 3) }
            XCTAssertGreaterThan(means[2], 140, "the CMYK photo (label 2: blue-tinted) decodes to its colours: \(means)")
            XCTAssertLessThan(means[0], 90, "\(means)")
        }
    }

    func testTheReadAheadHoldsNoMoreThanItsWindowAndGivesEveryRangeItsPhotos() throws {
        _ = try prepare(try writeFolder(perClass: 15), "\(root)/set", raw: true, perShard: 7)
        let split = try ShardSet(directory: "\(root)/set").train
        let order = Array((0..<60).reversed())
        let readAhead = ShardReadAhead(split: split, window: 12, threads: 3)
        readAhead.restart(order: order)
        func check(_ range: Range<Int>) throws {
            let images = try readAhead.take(range)
            XCTAssertEqual(images.labels, range.map { split.labels[order[$0]] })
            XCTAssertEqual(images.pixels, try range.flatMap { try split.pixels(order[$0]) }, "\(range)")
        }
        // In order; replica shares (the later share first); skipping ahead (a resume); going back.
        for first in stride(from: 0, to: 24, by: 6) { try check(first..<(first + 6)) }
        try check(27..<30)
        try check(24..<27)
        try check(48..<54)
        try check(6..<12)
        usleep(100_000)  // let the workers fill the window
        XCTAssertLessThanOrEqual(readAhead.peakHeld, 12, "never more than the window")
        XCTAssertGreaterThanOrEqual(readAhead.peakHeld, 6, "the workers do read ahead")
    }
}
