import CZlib
import Foundation

/// An IDX file (the MNIST family's format): a magic number, big-endian dimensions, raw bytes.
/// Read gzip-compressed or raw; zlib's gzread reads both.
public struct IDXFile {
    public let path: String
    /// Sizes of each dimension, e.g. `[60000, 28, 28]`.
    public let dimensions: [Int]
    /// The unsigned-byte payload, `dimensions.reduce(1, *)` long.
    public let bytes: [UInt8]

    /// Reads and checks an unsigned-byte IDX file with `expectedRank` dimensions.
    public init(path: String, expectedRank: Int) throws {
        self.path = path
        let data = try IDXFile.readAll(path)
        guard data.count >= 4, data[0] == 0, data[1] == 0 else {
            throw DataError("\(path) is not an IDX file (wrong magic number); check --data")
        }
        guard data[2] == 0x08 else {
            throw DataError("\(path) holds IDX type 0x\(String(data[2], radix: 16)), not unsigned bytes; only 0x08 is supported")
        }
        let rank = Int(data[3])
        guard rank == expectedRank else {
            throw DataError("\(path) has \(rank) dimensions where \(expectedRank) were expected; is it the right file?")
        }
        guard data.count >= 4 + 4 * rank else { throw DataError("\(path) is truncated inside its header") }
        dimensions = (0..<rank).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(data[4 + 4 * d + $1]) }
        }
        let payload = dimensions.reduce(1, *)
        let start = 4 + 4 * rank
        guard data.count - start >= payload else {
            throw DataError("\(path) is truncated: its header promises \(payload) bytes, it holds \(data.count - start)")
        }
        bytes = Array(data[start..<(start + payload)])
    }

    /// The first four (decompressed) bytes of a file, or nil if it has fewer or cannot be read.
    static func magic(_ path: String) -> [UInt8]? {
        guard let file = gzopen(path, "rb") else { return nil }
        defer { gzclose(file) }
        var bytes = [UInt8](repeating: 0, count: 4)
        let read = bytes.withUnsafeMutableBytes { gzread(file, $0.baseAddress, 4) }
        return read == 4 ? bytes : nil
    }

    /// The whole (decompressed) file.
    static func readAll(_ path: String) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw DataError("cannot open \(path)") }
        defer { gzclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if read < 0 { throw DataError("\(path) is corrupt (gzip error); re-install or re-download it") }
            if read == 0 { break }
            result.append(contentsOf: chunk[0..<Int(read)])
        }
        return result
    }
}
