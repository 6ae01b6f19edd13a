import AlexNetData
import CPNG
import CTurboJPEG
import Foundation
import XCTest

/// Images made here from known pixels with libpng and libjpeg-turbo, then decoded back.
final class ImageFileTests: XCTestCase {
    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "images-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// Writes a PNG with libpng's simplified API; `format` is e.g. PNG_FORMAT_RGBA.
    func writePNG(_ name: String, width: Int, height: Int, format: UInt32, pixels: [UInt8]) -> String {
        let path = "\(directory)/\(name)"
        var image = png_image()
        image.version = cpng_image_version()
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        XCTAssertNotEqual(png_image_write_to_file(&image, path, 0, pixels, 0, nil), 0)
        return path
    }

    func writeJPEG(_ name: String, width: Int, height: Int, grey: Bool, pixels: [UInt8]) -> String {
        let handle = tjInitCompress()
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let format = grey ? TJPF_GRAY : TJPF_RGB
        let status = tjCompress2(handle, pixels, Int32(width), 0, Int32(height), Int32(format.rawValue), &output, &size,
                                 Int32(grey ? TJSAMP_GRAY.rawValue : TJSAMP_444.rawValue), 100, 0)
        XCTAssertEqual(status, 0)
        let path = "\(directory)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes: output!, count: Int(size)))
        tjFree(output)
        return path
    }

    let width = 5, height = 3
    var greyPixels: [UInt8] { (0..<(width * height)).map { UInt8($0 * 17) } }
    var rgbPixels: [UInt8] { (0..<(width * height * 3)).map { UInt8(($0 * 37) % 256) } }

    func testPNGGreyAndRGBRoundTripExactly() throws {
        let grey = writePNG("grey.png", width: width, height: height, format: cpng_format_gray(), pixels: greyPixels)
        XCTAssertEqual(try ImageFile.decode(path: grey, channels: 1), DecodedImage(width: width, height: height, channels: 1, pixels: greyPixels))
        let rgb = writePNG("rgb.png", width: width, height: height, format: cpng_format_rgb(), pixels: rgbPixels)
        XCTAssertEqual(try ImageFile.decode(path: rgb, channels: 3).pixels, rgbPixels)
        // A grey image asked for as RGB repeats its value in every channel.
        XCTAssertEqual(try ImageFile.decode(path: grey, channels: 3).pixels, greyPixels.flatMap { [$0, $0, $0] })
        XCTAssertEqual(try ImageFile.decode(path: rgb, channels: 1).pixels.count, width * height)
    }

    func testPNGAlphaIsCompositedOntoBlack() throws {
        // Two pixels: opaque white, fully transparent white.
        let path = writePNG("rgba.png", width: 2, height: 1, format: cpng_format_rgba(), pixels: [255, 255, 255, 255, 255, 255, 255, 0])
        XCTAssertEqual(try ImageFile.decode(path: path, channels: 3).pixels, [255, 255, 255, 0, 0, 0])
    }

    func testJPEGDecodesCloseToItsPixels() throws {
        let smooth: [UInt8] = (0..<256).map { (i: Int) -> UInt8 in UInt8((i % 16) * 8 + (i / 16) * 4) }
        let grey = writeJPEG("grey.jpg", width: 16, height: 16, grey: true, pixels: smooth)
        let decoded = try ImageFile.decode(path: grey, channels: 1)
        XCTAssertEqual(decoded.width, 16)
        XCTAssertLessThanOrEqual(zip(decoded.pixels, smooth).map { abs(Int($0) - Int($1)) }.max()!, 3, "quality 100 is nearly exact")
        let colour: [UInt8] = smooth.flatMap { (v: UInt8) -> [UInt8] in [v, 255 - v, 128] }
        let rgb = writeJPEG("rgb.jpg", width: 16, height: 16, grey: false, pixels: colour)
        let decodedRGB = try ImageFile.decode(path: rgb, channels: 3)
        XCTAssertLessThanOrEqual(zip(decodedRGB.pixels, colour).map { abs(Int($0) - Int($1)) }.max()!, 4)
    }

    func testBadFilesNameThemselves() throws {
        let text = "\(directory)/notes.png"
        _ = FileManager.default.createFile(atPath: text, contents: Data("hello, world".utf8))
        XCTAssertThrowsError(try ImageFile.decode(path: text, channels: 1)) { XCTAssertTrue("\($0)".contains("notes.png") && "\($0)".contains("not a PNG or JPEG"), "\($0)") }

        let png = writePNG("cut.png", width: width, height: height, format: cpng_format_rgb(), pixels: rgbPixels)
        let whole = try Data(contentsOf: URL(fileURLWithPath: png))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: png))
        XCTAssertThrowsError(try ImageFile.decode(path: png, channels: 1)) { XCTAssertTrue("\($0)".contains("cut.png"), "\($0)") }

        let jpeg = writeJPEG("cut.jpg", width: 16, height: 16, grey: true, pixels: [UInt8](repeating: 90, count: 256))
        let jpegBytes = try Data(contentsOf: URL(fileURLWithPath: jpeg))
        try jpegBytes.prefix(40).write(to: URL(fileURLWithPath: jpeg))
        XCTAssertThrowsError(try ImageFile.decode(path: jpeg, channels: 1)) { XCTAssertTrue("\($0)".contains("cut.jpg"), "\($0)") }

        XCTAssertThrowsError(try ImageFile.decode(path: "\(directory)/absent.png", channels: 1)) { XCTAssertTrue("\($0)".contains("absent.png")) }
    }
}
