import AlexNetData
import CZlib
import Foundation
import XCTest

final class IDXTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "idx-tests-\(getpid())-\(name.hashValue)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// An IDX file's bytes: magic (0, 0, 0x08, rank), big-endian sizes, payload.
    func idx(_ dimensions: [Int], _ payload: [UInt8], type: UInt8 = 0x08) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return bytes + payload
    }

    func write(_ name: String, _ bytes: [UInt8], gzip: Bool) {
        let path = directory + "/" + name
        if gzip {
            let file = gzopen(path, "wb")
            _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
            gzclose(file)
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        }
    }

    /// A 4-image train split and a 2-image test split of 3x2 images.
    func writeDataSet(gzip: Bool, trainLabels: [UInt8] = [0, 1, 2, 9], trainImages: Int = 4, testLabels: [UInt8] = [3, 4]) {
        let suffix = gzip ? ".gz" : ""
        write("train-images-idx3-ubyte" + suffix, idx([trainImages, 3, 2], (0..<(trainImages * 6)).map { UInt8($0) }), gzip: gzip)
        write("train-labels-idx1-ubyte" + suffix, idx([trainLabels.count], trainLabels), gzip: gzip)
        write("t10k-images-idx3-ubyte" + suffix, idx([2, 3, 2], [UInt8](repeating: 7, count: 12)), gzip: gzip)
        write("t10k-labels-idx1-ubyte" + suffix, idx([2], testLabels), gzip: gzip)
    }

    func expectError(_ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try IDXDataSet.load(directory: directory), file: file, line: line) { error in
            for word in words {
                XCTAssertTrue("\(error)".contains(word), "\(error) should mention \(word)", file: file, line: line)
            }
        }
    }

    func testReadsGzipAndRawFiles() throws {
        for gzip in [true, false] {
            writeDataSet(gzip: gzip)
            let data = try IDXDataSet.load(directory: directory)
            XCTAssertEqual(data.train.count, 4)
            XCTAssertEqual(data.train.height, 3)
            XCTAssertEqual(data.train.width, 2)
            XCTAssertEqual(data.train.pixels, (0..<24).map { UInt8($0) })
            XCTAssertEqual(data.train.labels, [0, 1, 2, 9])
            XCTAssertEqual(data.test.labels, [3, 4])
            XCTAssertEqual(try IDXDataSet.load(directory: directory, trainLimit: 2).train.labels, [0, 1])
            tearDown()
            setUp()
        }
    }

    func testMissingDirectoryNamesThePackage() {
        XCTAssertThrowsError(try IDXDataSet.load(directory: directory + "/absent")) { error in
            XCTAssertTrue("\(error)".contains("dataset-fashion-mnist"))
            XCTAssertTrue("\(error)".contains("--data"))
        }
    }

    func testMissingFileIsNamed() {
        writeDataSet(gzip: true)
        try? FileManager.default.removeItem(atPath: directory + "/t10k-labels-idx1-ubyte.gz")
        expectError(["t10k-labels-idx1-ubyte"])
    }

    func testWrongMagicNumber() {
        writeDataSet(gzip: false)
        write("train-images-idx3-ubyte", [1, 2, 3, 4, 5, 6, 7, 8], gzip: false)
        expectError(["train-images-idx3-ubyte", "magic"])
    }

    func testWrongDimensions() {
        writeDataSet(gzip: false)
        write("train-images-idx3-ubyte", idx([24], (0..<24).map { UInt8($0) }), gzip: false)
        expectError(["train-images-idx3-ubyte", "dimensions"])
    }

    func testTruncatedPayload() {
        writeDataSet(gzip: true)
        write("train-images-idx3-ubyte.gz", idx([4, 3, 2], [UInt8](repeating: 1, count: 20)), gzip: true)
        expectError(["train-images-idx3-ubyte", "truncated"])
    }

    func testImageAndLabelCountsDisagree() {
        writeDataSet(gzip: true, trainLabels: [0, 1, 2])
        expectError(["4 images", "3 labels"])
    }

    func testLabelOutOfRange() {
        // The classes are those the training labels name (at least 10): a test label beyond them is an error.
        writeDataSet(gzip: true, testLabels: [3, 12])
        expectError(["t10k-labels-idx1-ubyte", "label 12", "index 1"])
    }

    func testMoreClassesComeFromTheTrainingLabels() throws {
        writeDataSet(gzip: true, trainLabels: [0, 1, 25, 3], testLabels: [25, 4])  // EMNIST letters have 26
        let data = try IDXDataSet.load(directory: directory)
        XCTAssertEqual(data.classes, 26)
        XCTAssertEqual(data.classNames[25], "25")
    }

    func testFoundByMagicNumberWhateverTheName() throws {
        writeDataSet(gzip: false)
        try FileManager.default.moveItem(atPath: directory + "/train-images-idx3-ubyte", toPath: directory + "/emnist-train-x")
        XCTAssertEqual(try DataFormat.detect(directory), .idx)
        XCTAssertEqual(try IDXDataSet.load(directory: directory).train.count, 4)
    }

    func testEmptyDataSet() {
        writeDataSet(gzip: true, trainLabels: [], trainImages: 0)
        expectError(["no images"])
    }
}
