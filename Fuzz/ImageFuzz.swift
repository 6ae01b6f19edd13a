@testable import AlexNetData
import Foundation

/// The PNG and JPEG readers: the header check, then the decoder. The pixel limit is lowered
/// to 2^18 here so that each input decodes in milliseconds; the check is the same code.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    for channels in [1, 3] {
        _ = try? ImageFile.decode(input.data, path: "fuzz.image", channels: channels, pixelLimit: 1 << 18)
    }
    return 0
}

func harnessSeeds() throws -> [String: Data] {
    let folder = NSTemporaryDirectory() + "fuzz-image-seeds-\(getpid())"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var seeds: [String: Data] = [:]
    for channels in [1, 3, 4] {
        let (width, height) = (9, 6)
        let pixels = (0..<(width * height * channels)).map { UInt8($0 * 7 % 256) }
        let png = "\(folder)/\(channels).png"
        try ImageEncoder.writePNG(pixels, width: width, height: height, channels: channels, to: png)
        seeds["\(channels)-channel.png"] = FileManager.default.contents(atPath: png)
        guard channels != 4 else { continue }
        let jpeg = "\(folder)/\(channels).jpg"
        try ImageEncoder.writeJPEG(pixels, width: width, height: height, channels: channels, quality: 90, to: jpeg)
        seeds["\(channels)-channel.jpg"] = FileManager.default.contents(atPath: jpeg)
    }
    return seeds
}
