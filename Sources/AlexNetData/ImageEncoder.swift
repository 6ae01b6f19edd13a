import CPNG
import CTurboJPEG
import Foundation

/// Encodes 8-bit pixels as PNG and JPEG, with the same libraries that decode them: `prepare`
/// stores its shards' photos as JPEG, and the tests build image folders from known pixels.
public enum ImageEncoder {
    /// Writes `pixels` (`height * width * channels`, interleaved; 1, 3 or 4 channels) as a PNG.
    public static func writePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, to path: String) throws {
        var image = png_image()
        image.version = cpng_image_version()
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = channels == 1 ? cpng_format_gray() : channels == 3 ? cpng_format_rgb() : cpng_format_rgba()
        guard png_image_write_to_file(&image, path, 0, pixels, 0, nil) != 0 else { throw DataError("cannot write \(path)") }
    }

    /// Writes `pixels` (`height * width * channels`, 1 or 3 channels) as a JPEG of `quality`,
    /// without chroma subsampling.
    public static func writeJPEG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, quality: Int = 100, to path: String) throws {
        let bytes = try jpeg(pixels, width: width, height: height, channels: channels, quality: quality, subsampled: false)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw DataError("cannot write \(path)") }
    }

    /// `pixels` (1 or 3 channels, or 4 for CMYK) encoded as a JPEG of `quality`; colour at full
    /// chroma resolution, or halved both ways (4:2:0, the common choice) when `subsampled`.
    public static func jpeg(_ pixels: [UInt8], width: Int, height: Int, channels: Int, quality: Int, subsampled: Bool) throws -> [UInt8] {
        guard let handle = tjInitCompress() else { throw DataError("libjpeg-turbo could not start") }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let format = channels == 1 ? TJPF_GRAY : channels == 4 ? TJPF_CMYK : TJPF_RGB
        let subsampling = channels == 1 ? TJSAMP_GRAY : subsampled ? TJSAMP_420 : TJSAMP_444
        guard tjCompress2(handle, pixels, Int32(width), 0, Int32(height), Int32(format.rawValue), &output, &size,
                          Int32(subsampling.rawValue), Int32(quality), 0) == 0, let output else {
            throw DataError("libjpeg-turbo cannot encode a \(width)x\(height) image: \(String(cString: tjGetErrorStr2(handle)))")
        }
        defer { tjFree(output) }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }
}
