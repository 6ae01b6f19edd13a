import AlexNetData
import Foundation
import XCTest

/// Image folders and CIFAR files, built here from known pixels, and every bad-data case.
final class DataSetFormatTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "formats-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// A flat colour per class, so that JPEG keeps it to within a unit or two.
    func colour(_ label: Int, _ index: Int) -> [UInt8] { [UInt8(40 + 60 * label), UInt8(200 - 30 * label), UInt8(10 * index)] }

    /// `split/<class>/` with `count` images each, alternating JPEG and PNG, `size` square.
    func writeFolder(_ split: String, classes: [String], count: Int, size: Int = 12) throws {
        for (label, name) in classes.enumerated() {
            let folder = "\(root)/\(split)/\(name)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for i in 0..<count {
                let pixels = [[UInt8]](repeating: colour(label, i), count: size * size).flatMap { $0 }
                if i % 2 == 0 {
                    try ImageEncoder.writeJPEG(pixels, width: size, height: size, channels: 3, to: "\(folder)/\(i).jpg")
                } else {
                    try ImageEncoder.writePNG(pixels, width: size, height: size, channels: 3, to: "\(folder)/\(i).png")
                }
            }
        }
    }

    func load(_ directory: String? = nil, _ configure: (inout DataLoadOptions) -> Void = { _ in }) throws -> DataSet {
        var options = DataLoadOptions()
        options.imageSize = 8
        configure(&options)
        return try DataSource.load(directory: directory ?? root, options: options)
    }

    func expectError(_ words: [String], _ configure: (inout DataLoadOptions) -> Void = { _ in }, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(nil, configure), file: file, line: line) { error in
            for word in words { XCTAssertTrue("\(error)".contains(word), "\(error) should mention \(word)", file: file, line: line) }
        }
    }

    func testTrainAndValFoldersDecodeToSortedClasses() throws {
        try writeFolder("train", classes: ["zebra", "apple", "mango"], count: 3)
        try writeFolder("val", classes: ["zebra", "apple", "mango"], count: 2)
        XCTAssertEqual(try DataFormat.detect(root), .folder)
        let data = try load()
        XCTAssertEqual(data.classNames, ["apple", "mango", "zebra"])
        XCTAssertEqual(data.train.count, 9)
        XCTAssertEqual(data.test.count, 6)
        XCTAssertEqual([data.train.height, data.train.width, data.train.channels], [8, 8, 3])
        // Interleaved by class, so a --train-limit keeps every class.
        XCTAssertEqual(Array(data.train.labels.prefix(3)), [0, 1, 2])
        for i in 0..<data.train.count {
            let label = Int(data.train.labels[i])
            let file = i / 3  // the i/3-th file of its class: 0.jpg, 1.png, 2.jpg
            let expected = colour(label == 0 ? 1 : label == 1 ? 2 : 0, file)  // apple was written second, mango third, zebra first
            let pixel = Array(data.train.pixels[(i * 192)..<(i * 192 + 3)])
            for c in 0..<3 {
                XCTAssertLessThanOrEqual(abs(Int(pixel[c]) - Int(expected[c])), file % 2 == 0 ? 3 : 0, "image \(i) (PNG exact, JPEG close)")
            }
        }
    }

    func testValFractionIsASeededDisjointSplit() throws {
        try writeFolder("all", classes: ["a", "b"], count: 10)
        let split = { (seed: UInt64) in try self.load("\(self.root)/all") { $0.valFraction = 0.3; $0.seed = seed } }
        let (one, again, other) = (try split(1), try split(1), try split(2))
        XCTAssertEqual(one.test.count, 6)
        XCTAssertEqual(one.train.count, 14)
        XCTAssertEqual(one.test.pixels, again.test.pixels, "the same seed holds out the same images")
        XCTAssertNotEqual(one.test.pixels, other.test.pixels, "another seed holds out others")
        let images = { (d: LabeledImages) in Set((0..<d.count).map { Array(d.pixels[($0 * 192)..<($0 * 192 + 192)]) }) }
        XCTAssertTrue(images(one.train).isDisjoint(with: images(one.test)))
        XCTAssertThrowsError(try load("\(root)/all")) { XCTAssertTrue("\($0)".contains("--val-fraction")) }
    }

    func testBadImagesAreNamedOrSkipped() throws {
        try writeFolder("train", classes: ["a", "b"], count: 3)
        try writeFolder("val", classes: ["a", "b"], count: 1)
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: "\(root)/train/a/0.jpg"))
        try jpeg.prefix(jpeg.count / 2).write(to: URL(fileURLWithPath: "\(root)/train/a/truncated.jpg"))
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(root)/train/b/notes.txt"))
        expectError(["truncated.jpg", "--skip-bad-images"])
        let data = try load { $0.skipBadImages = true }
        XCTAssertEqual(data.train.count, 6)
        XCTAssertEqual(data.skipped.count, 2)
        XCTAssertTrue(data.skipped.contains { $0.contains("truncated.jpg") })
        XCTAssertTrue(data.skipped.contains { $0.contains("notes.txt") && $0.contains("not a PNG or JPEG") })
    }

    func testFolderLayoutErrors() throws {
        try writeFolder("train", classes: ["a", "b"], count: 2)
        expectError(["no val/", "--val-fraction"])
        try writeFolder("val", classes: ["a", "c"], count: 1)
        expectError(["val/c", "does not have"])
        try FileManager.default.removeItem(atPath: "\(root)/val/c")
        try FileManager.default.createDirectory(atPath: "\(root)/train/empty", withIntermediateDirectories: true)
        expectError(["train/empty", "no image files"])
        try FileManager.default.removeItem(atPath: "\(root)/train/empty")
        XCTAssertEqual(try load().classes, 2)
        XCTAssertThrowsError(try load("\(root)/nothing-here")) { XCTAssertTrue("\($0)".contains("no data directory")) }
    }

    /// CIFAR records: label byte(s), then red, green and blue 32x32 planes.
    func cifarRecord(labels: [UInt8], seed: Int) -> [UInt8] {
        labels + (0..<3072).map { UInt8(($0 * 7 + seed * 13) % 256) }
    }

    func testCIFAR10BatchesAndCIFAR100() throws {
        for b in 1...5 {
            try Data(cifarRecord(labels: [UInt8(b)], seed: b) + cifarRecord(labels: [9], seed: b + 10))
                .write(to: URL(fileURLWithPath: "\(root)/data_batch_\(b).bin"))
        }
        try Data(cifarRecord(labels: [3], seed: 99)).write(to: URL(fileURLWithPath: "\(root)/test_batch.bin"))
        XCTAssertEqual(try DataFormat.detect(root), .cifar10)
        let ten = try load()
        XCTAssertEqual(ten.train.count, 10)
        XCTAssertEqual(ten.train.labels, [1, 9, 2, 9, 3, 9, 4, 9, 5, 9])
        XCTAssertEqual(ten.test.labels, [3])
        XCTAssertEqual(ten.classNames[3], "cat")
        // Pixel (y, x) of channel c comes from plane c: byte 1 + c * 1024 + y * 32 + x.
        let record = cifarRecord(labels: [3], seed: 99)
        for (y, x, c) in [(0, 0, 0), (5, 7, 1), (31, 31, 2)] {
            XCTAssertEqual(ten.test.pixels[(y * 32 + x) * 3 + c], record[1 + c * 1024 + y * 32 + x])
        }
        try Data(cifarRecord(labels: [1], seed: 1).dropLast(5)).write(to: URL(fileURLWithPath: "\(root)/test_batch.bin"))
        expectError(["test_batch.bin", "truncated"])
        try Data(cifarRecord(labels: [12], seed: 1)).write(to: URL(fileURLWithPath: "\(root)/test_batch.bin"))
        expectError(["test_batch.bin", "label 12"])

        let hundred = root + "/c100"
        try FileManager.default.createDirectory(atPath: hundred, withIntermediateDirectories: true)
        try Data(cifarRecord(labels: [2, 77], seed: 1) + cifarRecord(labels: [0, 5], seed: 2)).write(to: URL(fileURLWithPath: "\(hundred)/train.bin"))
        try Data(cifarRecord(labels: [19, 99], seed: 3)).write(to: URL(fileURLWithPath: "\(hundred)/test.bin"))
        XCTAssertEqual(try DataFormat.detect(hundred), .cifar100)
        let data = try load(hundred)
        XCTAssertEqual(data.train.labels, [77, 5], "the fine label")
        XCTAssertEqual(data.classes, 100)
    }

    func testUnrecognisedFolderSaysWhatItExpects() throws {
        try Data("hello".utf8).write(to: URL(fileURLWithPath: "\(root)/readme.txt"))
        XCTAssertThrowsError(try DataFormat.detect(root)) { XCTAssertTrue("\($0)".contains("--format")) }
    }
}
