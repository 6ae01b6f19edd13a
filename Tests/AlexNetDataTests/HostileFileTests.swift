import AlexNetData
import CZlib
import Foundation
import XCTest

/// One test per class of hostile data file: each reader checks what a file claims against
/// ReadLimits before it allocates, and ends in one error line naming the file.
final class HostileFileTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "hostile-files-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let path = "\(directory)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A file of `bytes` bytes that takes no disk space (a hole), to stand for a huge file.
    func sparseFile(_ name: String, bytes: Int) -> String {
        let path = write(name, [])
        XCTAssertEqual(truncate(path, off_t(bytes)), 0)
        return path
    }

    func expectError(_ words: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for word in words { XCTAssertTrue("\(error)".contains(word), "\(error) should mention \(word)", file: file, line: line) }
            XCTAssertFalse("\(error)".contains("\n"), "one line: \(error)", file: file, line: line)
        }
    }

    func testIDXHeaderOfAllOnesIsRefusedBeforeAnyAllocation() {
        let path = write("all-ones-idx3-ubyte", [0, 0, 8, 3] + [UInt8](repeating: 0xFF, count: 12) + [1, 2, 3])
        expectError([path, "4294967295 x 4294967295 x 4294967295"]) { _ = try IDXFile(path: path, expectedRank: 3) }
    }

    func testIDXCountWithinTheLimitButBeyondTheFileIsTruncation() {
        // 0xFFFFFFFF labels is under the 4 GiB limit: the reader reads what is there, in chunks, and says so.
        let path = write("labels-idx1-ubyte", [0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        expectError([path, "truncated", "promises 4294967295 bytes, it holds 3"]) { _ = try IDXFile(path: path, expectedRank: 1) }
    }

    func testIDXImagesWithAZeroOrHugeSideAreRefused() {
        for (rows, name) in [(0, "zero"), (5000, "huge")] {
            let path = write("\(name)-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, UInt8(rows >> 8), UInt8(rows & 255), 0, 0, 0, 2, 9, 9])
            expectError([path, "outside 1...4096"]) { _ = try IDXFile(path: path, expectedRank: 3) }
        }
    }

    func testIDXEmptyFileSaysEmpty() {
        let path = write("empty-idx1-ubyte", [])
        expectError([path, "is empty"]) { _ = try IDXFile(path: path, expectedRank: 1) }
    }

    func testCIFARBatchAboveTheLimitIsRefusedBeforeReading() {
        _ = sparseFile("data_batch_1.bin", bytes: ReadLimits.cifarFileBytes + 3073)
        expectError(["data_batch_1.bin", "more than any CIFAR batch"]) { _ = try CIFAR.load(directory: directory, format: .cifar10) }
    }

    /// A small JPEG whose frame header is rewritten to claim `side x side` pixels.
    func jpegClaiming(side: Int) throws -> String {
        let path = "\(directory)/huge.jpg"
        try ImageEncoder.writeJPEG([UInt8](repeating: 90, count: 64), width: 8, height: 8, channels: 1, to: path)
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let frame = try XCTUnwrap((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        for offset in [frame + 5, frame + 7] { (bytes[offset], bytes[offset + 1]) = (UInt8(side >> 8), UInt8(side & 255)) }
        return write("huge.jpg", bytes)
    }

    /// A small PNG whose IHDR is rewritten (with its CRC) to claim `side x side` pixels.
    func pngClaiming(side: Int) throws -> String {
        let path = "\(directory)/huge.png"
        try ImageEncoder.writePNG([UInt8](repeating: 90, count: 16), width: 4, height: 4, channels: 1, to: path)
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        for offset in [16, 20] { bytes.replaceSubrange(offset..<(offset + 4), with: [0, 0, UInt8(side >> 8), UInt8(side & 255)]) }
        let crc = UInt32(bytes[12..<29].withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
        bytes.replaceSubrange(29..<33, with: [24, 16, 8, 0].map { UInt8(crc >> $0 & 255) })
        return write("huge.png", bytes)
    }

    func testImageHeadersClaimingHugeDimensionsFailAtOnce() throws {
        for path in [try jpegClaiming(side: 60000), try pngClaiming(side: 60000)] {
            XCTAssertLessThan(try ReadLimits.regularFileSize(path), 1000)
            let started = Date()
            expectError([path, "claims 60000 x 60000 pixels", "scale it down"]) { _ = try ImageFile.decode(path: path, channels: 3) }
            XCTAssertLessThan(Date().timeIntervalSince(started), 1, "refused from the header, not after decoding")
        }
    }

    func testEmptyShortAndHugeImageFilesSayWhatIsWrong() {
        let empty = write("empty.jpg", [])
        expectError([empty, "is empty (0 bytes)"]) { _ = try ImageFile.decode(path: empty, channels: 3) }
        let short = write("short.png", [0x41, 0x42])
        expectError([short, "not a PNG or JPEG image (2 bytes, starting 41 42)"]) { _ = try ImageFile.decode(path: short, channels: 3) }
        let cut = write("cut.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A])
        expectError([cut, "not a readable PNG"]) { _ = try ImageFile.decode(path: cut, channels: 3) }
        let huge = sparseFile("huge.png", bytes: ReadLimits.imageFileBytes + 1)
        expectError([huge, "more than any image file"]) { _ = try ImageFile.decode(path: huge, channels: 3) }
        expectError([directory, "not a regular file"]) { _ = try ImageFile.decode(path: directory, channels: 3) }
    }

    func testClassFolderWhoseNameIsNotUTF8IsNamedNotDropped() throws {
        try FileManager.default.createDirectory(atPath: "\(directory)/cats", withIntermediateDirectories: true)
        try ImageEncoder.writePNG([UInt8](repeating: 9, count: 48), width: 4, height: 4, channels: 3, to: "\(directory)/cats/a.png")
        var name = Array("\(directory)/d".utf8CString.dropLast())
        name += [CChar(bitPattern: 0xE9), CChar(bitPattern: 0x6F), 0]  // "dé" in Latin-1, "o" after it
        XCTAssertEqual(name.withUnsafeBufferPointer { mkdir($0.baseAddress!, 0o755) }, 0)
        var options = DataLoadOptions()
        options.valFraction = 0.5
        expectError([directory, "d\\xe9o", "not valid UTF-8", "rename it"]) { _ = try DataSource.load(directory: directory, options: options) }
    }

    func testImageSizeBeyondTheLimitIsRefusedBeforeAllocating() throws {
        try FileManager.default.createDirectory(atPath: "\(directory)/cats", withIntermediateDirectories: true)
        try ImageEncoder.writePNG([UInt8](repeating: 9, count: 48), width: 4, height: 4, channels: 3, to: "\(directory)/cats/a.png")
        var options = DataLoadOptions()
        options.valFraction = 0.5
        options.imageSize = 100_000
        expectError(["--image-size 100000", "outside 1...4096"]) { _ = try DataSource.load(directory: directory, options: options) }
    }

    func testCheckedProductRefusesOverflowNegativesAndTheLimit() {
        XCTAssertEqual(ReadLimits.product([3, 4, 5], limit: 60), 60)
        XCTAssertNil(ReadLimits.product([3, 4, 5], limit: 59))
        XCTAssertNil(ReadLimits.product([1 << 62, 4], limit: Int.max))
        XCTAssertNil(ReadLimits.product([-1, -1], limit: Int.max))
        XCTAssertEqual(ReadLimits.product([0, Int.max, Int.max], limit: 10), 0)
    }
}
