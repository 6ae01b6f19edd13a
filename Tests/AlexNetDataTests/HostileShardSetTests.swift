import AlexNetData
import Foundation
import XCTest

/// `prepare`'s output folder, the set's identity, `dataset.json` and the label files, against
/// hostile input (docs/reliability.md, "Shard sets and label files").
final class HostileShardSetTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "hostile-shards-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// `root/data/{train,val}/{a,b}/*.png`, `perClass` training photos per class, different for every `tint`.
    func writeFolder(_ name: String = "data", perClass: Int = 3, tint: Int = 0) throws -> String {
        for split in ["train", "val"] {
            for (label, cls) in ["a", "b"].enumerated() {
                let folder = "\(root)/\(name)/\(split)/\(cls)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<(split == "train" ? perClass : 1) {
                    let pixels = (0..<(12 * 10 * 3)).map { UInt8(truncatingIfNeeded: $0 * (label + 1) + i * 7 + tint * 31) }
                    try ImageEncoder.writePNG(pixels, width: 12, height: 10, channels: 3, to: "\(folder)/\(i).png")
                }
            }
        }
        return "\(root)/\(name)"
    }

    func prepare(_ source: String, _ output: String, edit: (inout PrepareOptions) -> Void = { _ in }) throws -> PrepareSummary {
        var options = PrepareOptions(source: source, output: output)
        (options.imageSize, options.photosPerShard, options.threads) = (8, 2, 2)
        edit(&options)
        return try Prepare.run(options) { _ in }
    }

    /// Every path under `folder`, to see that nothing was written there.
    func listing(_ folder: String) -> [String] { ((try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? []).sorted() }

    func assertThrows(_ body: @autoclosure () throws -> Any, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for word in words { XCTAssertTrue("\(error)".contains(word), "\(error) should mention \(word)", file: file, line: line) }
        }
    }

    // MARK: the output folder

    func testAnOutputInsideTheSourceIsRefusedHoweverThePathReachesItAndNothingIsWritten() throws {
        let source = try writeFolder()
        let before = listing(source)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/into-train", withDestinationPath: "\(source)/train")
        try FileManager.default.createSymbolicLink(atPath: "\(root)/same", withDestinationPath: source)
        try FileManager.default.createDirectory(atPath: "\(root)/elsewhere", withIntermediateDirectories: true)
        let outputs = [source, "\(source)/shards", "\(source)/train/a/new/deeper", "\(root)/into-train/shards",
                       "\(root)/same", "\(root)/same/x", "\(root)/elsewhere/../data/val/out", "\(source)/./train/../x"]
        for output in outputs {
            assertThrows(try prepare(source, output), mentions: ["lies inside", "outside the source"])
            XCTAssertEqual(listing(source), before, "nothing written into the source for \(output)")
        }
        // The source given through a link, the output plainly inside it.
        assertThrows(try prepare("\(root)/same", "\(source)/train/out"), mentions: ["lies inside"])
        XCTAssertEqual(listing(source), before)
        // An output that holds the source.
        assertThrows(try prepare(source, root), mentions: ["holds the source"])
        XCTAssertTrue(try prepare(source, "\(root)/apart").manifest.train.count > 0, "a folder beside the source is fine")
    }

    func testAFolderLockedByAnotherJobIsRefused() throws {
        let source = try writeFolder()
        try FileManager.default.createDirectory(atPath: "\(root)/busy", withIntermediateDirectories: true)
        // Another job's lock, taken as `train --run-dir` and `prepare` take it: on the folder itself.
        let lock = open("\(root)/busy", O_RDONLY | O_DIRECTORY)
        XCTAssertEqual(flock(lock, LOCK_EX | LOCK_NB), 0)
        assertThrows(try prepare(source, "\(root)/busy"), mentions: ["in use by another job"])
        XCTAssertEqual(listing("\(root)/busy"), [], "the refused job wrote nothing")
        close(lock)
        XCTAssertGreaterThan(try prepare(source, "\(root)/busy").photosThisRun, 0, "free once the lock is dropped")
    }

    // MARK: the set's identity

    func testOtherPhotosUnderTheSameNamesAreNotTakenForTheFinishedSet() throws {
        let source = try writeFolder()
        _ = try prepare(source, "\(root)/set")
        XCTAssertTrue(try prepare(source, "\(root)/set").alreadyDone)
        let photo = "\(source)/train/a/1.png"
        let time = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: photo)[.modificationDate] as? Date)
        // Another photo under the name (wider, so another size), its time set back to the old one's.
        try ImageEncoder.writePNG([UInt8](repeating: 99, count: 14 * 10 * 3), width: 14, height: 10, channels: 3, to: photo)
        try FileManager.default.setAttributes([.modificationDate: time], ofItemAtPath: photo)
        assertThrows(try prepare(source, "\(root)/set"), mentions: ["made from other photos", "train-00001"])
        // The same bytes in every file, but one file rewritten in place since: its time differs.
        let fresh = try writeFolder("fresh")
        _ = try prepare(fresh, "\(root)/fresh-set")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(fresh)/val/b/0.png"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: "\(fresh)/val/b/0.png")
        try bytes.write(to: URL(fileURLWithPath: "\(fresh)/val/b/0.png"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 3600)], ofItemAtPath: "\(fresh)/val/b/0.png")
        assertThrows(try prepare(fresh, "\(root)/fresh-set"), mentions: ["made from other photos", "val-00000"])
        // A stopped prepare (shard 2 holds a broken file) whose written shard 0 has changed since.
        let stopped = try writeFolder("stopped")
        let good = try Data(contentsOf: URL(fileURLWithPath: "\(stopped)/train/b/2.png"))
        try Data([0x89, 0x50, 0x4E, 0x47, 1]).write(to: URL(fileURLWithPath: "\(stopped)/train/b/2.png"))
        assertThrows(try prepare(stopped, "\(root)/stopped-set") { $0.threads = 1 }, mentions: ["b/2.png"])
        try good.write(to: URL(fileURLWithPath: "\(stopped)/train/b/2.png"))
        try ImageEncoder.writePNG([UInt8](repeating: 7, count: 12 * 10 * 3), width: 12, height: 10, channels: 3, to: "\(stopped)/train/a/0.png")
        assertThrows(try prepare(stopped, "\(root)/stopped-set"), mentions: ["stopped prepare", "train-00000"])
    }

    // MARK: dataset.json

    /// The set's manifest, changed by `edit` and sealed again (as a careful forger would), or not.
    func rewriteManifest(_ set: String, seal: Bool = true, _ edit: (inout ShardManifest) -> Void) throws {
        let path = "\(set)/dataset.json"
        var manifest = try ShardManifest.decode(try Data(contentsOf: URL(fileURLWithPath: path)), path: path)
        edit(&manifest)
        if seal { manifest = try manifest.sealed() }
        try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: path))
    }

    func testTheManifestChecksItselfEveryFileItNamesAndNamesOnlyFilesInsideTheSet() throws {
        let source = try writeFolder()
        _ = try prepare(source, "\(root)/good")
        let good = try Data(contentsOf: URL(fileURLWithPath: "\(root)/good/dataset.json"))
        func fresh(_ name: String) throws -> String {
            try? FileManager.default.removeItem(atPath: "\(root)/\(name)")
            try FileManager.default.copyItem(atPath: "\(root)/good", toPath: "\(root)/\(name)")
            return "\(root)/\(name)"
        }
        try Data("outside".utf8).write(to: URL(fileURLWithPath: "\(root)/secret.shard"))
        let cases: [(String, Bool, (inout ShardManifest) -> Void, [String])] = [
            ("edited", false, { $0.quality = 91 }, ["does not match its own checksum"]),
            ("unsealed", false, { $0.checksum = nil }, ["has no checksum"]),
            ("old", true, { $0.version = 1 }, ["shard format 1"]),
            ("parent", true, { $0.train[0].name = "../secret" }, ["not a plain file name"]),
            ("absolute", true, { $0.val[0].name = "/etc/passwd" }, ["not a plain file name"]),
            ("empty-name", true, { $0.train[0].name = "" }, ["not a plain file name"]),
            ("hidden", true, { $0.train[0].name = ".." }, ["not a plain file name"]),
            ("twice", true, { $0.val.append($0.train[0]) }, ["listed more than once"]),
            ("classes", true, { $0.classNames = (0..<100_001).map { "c\($0)" } }, ["100001 classes", "100000"]),
            ("same-class", true, { $0.classNames = ["a", "a"] }, ["listed more than once"]),
            ("photos", true, { $0.train[0].photos = Int.max }, ["claims"]),
            ("statistics-size", true, { $0.statistics.bytes += 8 }, ["statistics.bin"]),
            ("statistics-sum", true, { $0.statistics.crc32 ^= 1 }, ["statistics.bin is damaged", "checksum"]),
        ]
        for (name, seal, edit, words) in cases {
            let set = try fresh(name)
            try rewriteManifest(set, seal: seal, edit)
            assertThrows(try ShardSet(directory: set), mentions: words)
        }
        let flipped = try fresh("flipped-statistics")
        var statistics = try Data(contentsOf: URL(fileURLWithPath: "\(flipped)/statistics.bin"))
        statistics[statistics.count - 9] ^= 0x10
        try statistics.write(to: URL(fileURLWithPath: "\(flipped)/statistics.bin"))
        assertThrows(try ShardSet(directory: flipped), mentions: ["statistics.bin is damaged", "checksum"])
        XCTAssertEqual(try ShardSet(directory: try fresh("copy")).manifest, try ShardManifest.decode(good, path: "good"), "an untouched copy opens")
    }

    // MARK: label files

    func labels(_ text: String, synsets: String? = nil) throws -> ValidationLabels {
        try ValidationLabels(text: text, file: "labels.txt", synsets: synsets.map { ($0, "synsets.txt") })
    }

    func testLabelFilesWithDuplicatesOfAnyKindAreRefused() throws {
        let header = "ImageId,PredictionString\n"
        assertThrows(try labels(header + "img_1,n01440764 1 2 3 4\nimg_2,n01443537\nimg_1,n01443537 5 6 7 8\n"),
                     mentions: ["img_1", "line 2", "line 4", "n01440764 there, n01443537 here"])
        assertThrows(try labels(header + "img_1,n01440764\nimg_1,n01440764\n"), mentions: ["img_1", "the same class twice"])
        assertThrows(try labels("1\n2\n", synsets: "n01440764 tench\nn01440764 tench again\n"), mentions: ["synsets.txt", "n01440764", "line 1", "line 2"])
        assertThrows(try labels("1\n2\n", synsets: (0..<5).map { _ in "n01443537" }.joined(separator: "\n")), mentions: ["n01443537", "again"])
        assertThrows(try labels("1\n\n2\n", synsets: "n01440764\nn01443537\n"), mentions: ["blank line before line 3"])
        assertThrows(try labels(",n01440764\n"), mentions: ["line 1"])
        // Windows line ends and a trailing blank line are fine.
        let crlf = try labels("2\r\n1\r\n\r\n", synsets: "n01440764\r\nn01443537\r\n")
        XCTAssertEqual(crlf.synset(of: "ILSVRC2012_val_00000001"), "n01443537")
        XCTAssertEqual(crlf.synset(of: "ILSVRC2012_val_00000002"), "n01440764")
        // Two files of one image in the flat folder.
        let source = try writeFolder()
        try FileManager.default.removeItem(atPath: "\(source)/val")
        try FileManager.default.createDirectory(atPath: "\(source)/val", withIntermediateDirectories: true)
        for name in ["img_1.JPEG", "img_1.png"] { try FileManager.default.copyItem(atPath: "\(source)/train/a/0.png", toPath: "\(source)/val/\(name)") }
        try Data((header + "img_1,a\n").utf8).write(to: URL(fileURLWithPath: "\(root)/labels.csv"))
        assertThrows(try prepare(source, "\(root)/out") { $0.valLabels = "\(root)/labels.csv" }, mentions: ["is not `ImageId,PredictionString`"])
        try Data((header + "img_1,n01440764\n").utf8).write(to: URL(fileURLWithPath: "\(root)/labels.csv"))
        for name in ["a", "b"] { try FileManager.default.moveItem(atPath: "\(source)/train/\(name)", toPath: "\(source)/train/n0144076\(name == "a" ? 4 : 5)") }
        assertThrows(try prepare(source, "\(root)/out") { $0.valLabels = "\(root)/labels.csv" }, mentions: ["img_1.JPEG", "img_1.png", "remove one"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(root)/out"), "refused before the output was made")
    }

    func testALabelFileThatIsNotARegularFileSaysSo() throws {
        let fifo = "\(root)/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        for path in [root, fifo, "/dev/null"] {
            assertThrows(try ValidationLabels(file: path, synsets: nil), mentions: [path, "not a regular file"])
        }
        assertThrows(try ValidationLabels(file: "\(root)/absent.csv", synsets: nil), mentions: ["absent.csv", "No such file"])
    }

    /// The resampling of the whole scaled image (before only the centre's columns and rows were
    /// worked out), written out again here as the reference.
    func referenceSquare(_ image: DecodedImage, size: Int) -> [UInt8] {
        func taps(_ input: Int, _ output: Int) -> [(Int, [Float])] {
            let scale = Double(input) / Double(output), support = max(scale, 1)
            return (0..<output).map { i in
                let centre = (Double(i) + 0.5) * scale
                let low = max(Int((centre - support).rounded(.down)), 0), high = min(Int((centre + support).rounded(.up)), input)
                let weights = (low..<high).map { x in max(0, 1 - abs((Double(x) + 0.5 - centre) / support)) }
                let total = weights.reduce(0, +)
                return (low, weights.map { Float($0 / total) })
            }
        }
        let (h, w, c) = (image.height, image.width, image.channels)
        let scaledH = h <= w ? size : max(size, Int((Double(h) * Double(size) / Double(w)).rounded()))
        let scaledW = w <= h ? size : max(size, Int((Double(w) * Double(size) / Double(h)).rounded()))
        let rows = Array(taps(h, scaledH)[((scaledH - size) / 2)...].prefix(size)), columns = Array(taps(w, scaledW)[((scaledW - size) / 2)...].prefix(size))
        var across = [Float](repeating: 0, count: h * size * c)
        for y in 0..<h { for (j, tap) in columns.enumerated() { for ch in 0..<c {
            var sum: Float = 0
            for (k, weight) in tap.1.enumerated() { sum += weight * Float(image.pixels[(y * w + tap.0 + k) * c + ch]) }
            across[(y * size + j) * c + ch] = sum
        } } }
        var result = [UInt8](repeating: 0, count: size * size * c)
        for (i, tap) in rows.enumerated() { for j in 0..<(size * c) {
            var sum: Float = 0
            for (k, weight) in tap.1.enumerated() { sum += weight * across[(tap.0 + k) * size * c + j] }
            result[i * size * c + j] = UInt8(min(max(sum.rounded(), 0), 255))
        } }
        return result
    }

    func testTheCentreSquareIsTheWholeResampleCroppedBitForBitAndCostsOnlyTheSquare() {
        for (width, height, size) in [(30, 22, 16), (22, 30, 16), (5, 300, 12), (300, 5, 12), (7, 7, 20), (640, 480, 227), (1, 40, 8)] {
            var state = UInt64(width * 1000 + height)
            let pixels = (0..<(width * height * 3)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(state >> 56)
            }
            let image = DecodedImage(width: width, height: height, channels: 3, pixels: pixels)
            XCTAssertEqual(Resample.shorterSideThenCentreCrop(image, size: size), referenceSquare(image, size: size), "\(width) x \(height) at \(size)")
        }
        // 16.7 million columns scaled, 256 kept: a few hundred KB of work, not gigabytes.
        XCTAssertLessThan(Resample.workBytes(width: 65536, height: 1, channels: 3, size: 256), 1 << 20)
        XCTAssertLessThan(Resample.workBytes(width: 1, height: 65536, channels: 3, size: 256), 1 << 20)
        XCTAssertGreaterThan(Resample.workBytes(width: 4000, height: 3000, channels: 3, size: 256), 3000 * 256 * 3 * 4, "the short side's rows, in floats")
    }
}
