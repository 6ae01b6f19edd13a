import CPNG
import CTurboJPEG
import Foundation

/// An 8-bit image, row-major, channels interleaved.
public struct DecodedImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// 1 (grey) or 3 (RGB).
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// Decodes PNG (libpng) and JPEG (libjpeg-turbo) files, found by their first bytes, into grey
/// or RGB. Grey, RGB, RGBA, palette and 16-bit PNGs and grey, YCbCr and CMYK JPEGs all come out
/// in the channels asked for; alpha is composited onto black.
public enum ImageFile {
    public static func decode(path: String, channels: Int) throws -> DecodedImage {
        let data = try ReadLimits.contents(of: path, limit: ReadLimits.imageFileBytes, what: "image file")
        return try decode(data, path: path, channels: channels)
    }

    /// Decodes a file's bytes; `path` names it in errors. The dimensions in the header are
    /// checked against `pixelLimit` before anything is allocated for the pixels.
    public static func decode(_ data: Data, path: String, channels: Int, pixelLimit: Int = ReadLimits.imagePixels) throws -> DecodedImage {
        precondition(channels == 1 || channels == 3)
        let head = [UInt8](data.prefix(8))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try decodePNG(data, path: path, channels: channels, pixelLimit: pixelLimit) }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return try decodeJPEG(data, path: path, channels: channels, pixelLimit: pixelLimit) }
        if data.isEmpty { throw DataError("\(path) is empty (0 bytes), not an image: remove it or copy it again") }
        let bytes = head.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw DataError("\(path) is not a PNG or JPEG image (\(data.count) bytes, starting \(bytes)): remove it or convert it")
    }

    /// The width and height a PNG or JPEG header claims, read without decoding; nil for anything else.
    public static func dimensions(_ data: Data) -> (width: Int, height: Int)? {
        let head = [UInt8](data.prefix(8))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            var image = png_image()
            image.version = cpng_image_version()
            defer { png_image_free(&image) }
            let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
            return begun != 0 ? (Int(image.width), Int(image.height)) : nil
        }
        guard head.starts(with: [0xFF, 0xD8, 0xFF]), let handle = tjInitDecompress() else { return nil }
        defer { tjDestroy(handle) }
        var bytes = [UInt8](data)
        var (width, height, subsampling, colorspace): (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        guard tjDecompressHeader3(handle, &bytes, UInt(bytes.count), &width, &height, &subsampling, &colorspace) == 0 else { return nil }
        return (Int(width), Int(height))
    }

    /// The pixel count of a `width x height` header, or an error naming the file when it is
    /// empty or above `limit` (checked before decoding, so a small file that claims a huge
    /// image costs nothing).
    static func checkedPixels(width: Int, height: Int, path: String, limit: Int) throws -> Int {
        guard width >= 1, height >= 1 else { throw DataError("\(path) claims an image of \(width) x \(height) pixels; it is damaged") }
        guard let pixels = ReadLimits.product([width, height], limit: limit) else {
            throw DataError("\(path) claims \(width) x \(height) pixels, more than the \(limit) this program decodes; scale it down (e.g. to 1024 pixels on its shorter side) or remove it")
        }
        return pixels
    }

    static func decodePNG(_ data: Data, path: String, channels: Int, pixelLimit: Int) throws -> DecodedImage {
        var image = png_image()
        image.version = cpng_image_version()
        defer { png_image_free(&image) }
        func failure() -> DataError {
            let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return DataError("\(path) is not a readable PNG (\(message)); it may be truncated or corrupt")
        }
        let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw failure() }
        image.format = channels == 1 ? cpng_format_gray() : cpng_format_rgb()
        let (width, height) = (Int(image.width), Int(image.height))
        let count = try checkedPixels(width: width, height: height, path: path, limit: pixelLimit)
        var pixels = [UInt8](repeating: 0, count: count * channels)
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw failure() }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    static func decodeJPEG(_ data: Data, path: String, channels: Int, pixelLimit: Int) throws -> DecodedImage {
        guard let handle = tjInitDecompress() else { throw DataError("libjpeg-turbo could not start") }
        defer { tjDestroy(handle) }
        func failure() -> DataError {
            DataError("\(path) is not a readable JPEG (\(String(cString: tjGetErrorStr2(handle)))); it may be truncated or corrupt")
        }
        var bytes = [UInt8](data)
        var (width, height, subsampling, colorspace): (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        guard tjDecompressHeader3(handle, &bytes, UInt(bytes.count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw failure()
        }
        let count = try checkedPixels(width: Int(width), height: Int(height), path: path, limit: pixelLimit)
        // libjpeg-turbo cannot turn CMYK into RGB itself: decode CMYK and convert here.
        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let format = cmyk ? TJPF_CMYK : (channels == 1 ? TJPF_GRAY : TJPF_RGB)
        var decoded = [UInt8](repeating: 0, count: count * (cmyk ? 4 : channels))
        let status = tjDecompress2(handle, &bytes, UInt(bytes.count), &decoded, width, 0, height, Int32(format.rawValue), 0)
        // A warning (e.g. a truncated file that still decoded partly) is an error for training data.
        guard status == 0 else { throw failure() }
        guard cmyk else { return DecodedImage(width: Int(width), height: Int(height), channels: channels, pixels: decoded) }
        // Adobe's JPEGs store CMYK inverted: each byte is already 255 - ink.
        var pixels = [UInt8](repeating: 0, count: count * channels)
        for i in 0..<count {
            let k = Int(decoded[4 * i + 3])
            let r = Int(decoded[4 * i]) * k / 255
            let g = Int(decoded[4 * i + 1]) * k / 255
            let b = Int(decoded[4 * i + 2]) * k / 255
            if channels == 3 {
                pixels[3 * i] = UInt8(r)
                pixels[3 * i + 1] = UInt8(g)
                pixels[3 * i + 2] = UInt8(b)
            } else {
                let grey: Int = (299 * r + 587 * g + 114 * b) / 1000
                pixels[i] = UInt8(grey)
            }
        }
        return DecodedImage(width: Int(width), height: Int(height), channels: channels, pixels: pixels)
    }
}
