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
        guard let file = gzopen(path, "rb") else { throw DataError("cannot open \(path): \(String(cString: strerror(errno))); check the path") }
        defer { gzclose(file) }
        try self.init(source: path, expectedRank: expectedRank) { buffer in
            let read = gzread(file, buffer.baseAddress, UInt32(buffer.count))
            if read < 0 { throw DataError("\(path) is corrupt (gzip error); re-install or re-download it") }
            return Int(read)
        }
    }

    /// Parses an IDX stream. `read` fills up to its buffer's size and returns how many bytes
    /// it gave (0 at the end). The header is checked before the payload is read, and the
    /// payload is read in chunks, so memory follows the bytes the file really holds.
    init(source path: String, expectedRank: Int, read: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        self.path = path
        let magic = try IDXFile.read(upTo: 4, from: read)
        guard magic.count == 4, magic[0] == 0, magic[1] == 0 else {
            throw DataError(magic.isEmpty ? "\(path) is empty: re-install or re-download it"
                                          : "\(path) is not an IDX file (wrong magic number); check --data")
        }
        guard magic[2] == 0x08 else {
            throw DataError("\(path) holds IDX type 0x\(String(magic[2], radix: 16)), not unsigned bytes; only 0x08 is supported")
        }
        let rank = Int(magic[3])
        guard rank == expectedRank else {
            throw DataError("\(path) has \(rank) dimensions where \(expectedRank) were expected; is it the right file?")
        }
        let header = try IDXFile.read(upTo: 4 * rank, from: read)
        guard header.count == 4 * rank else { throw DataError("\(path) is truncated inside its header; re-download it") }
        dimensions = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(header[4 * d + $1]) } }
        let payload = try IDXFile.payloadBytes(dimensions, path: path)
        bytes = try IDXFile.read(upTo: payload, from: read)
        guard bytes.count == payload else {
            throw DataError("\(path) is truncated: its header promises \(payload) bytes, it holds \(bytes.count); re-download it")
        }
    }

    /// The payload size the header's dimensions promise, checked against the limits: images
    /// (every dimension after the first) are 1 to `ReadLimits.storedImageSide` on a side.
    static func payloadBytes(_ dimensions: [Int], path: String) throws -> Int {
        let shape = dimensions.map(String.init).joined(separator: " x ")
        if let side = dimensions.dropFirst().first(where: { $0 < 1 || $0 > ReadLimits.storedImageSide }) {
            throw DataError("\(path) claims images of \(shape) (a side of \(side)), outside 1...\(ReadLimits.storedImageSide); the file is damaged or not image data")
        }
        guard let payload = ReadLimits.product(dimensions, limit: ReadLimits.idxPayloadBytes) else {
            throw DataError("\(path) claims \(shape) bytes of data, more than the \(ReadLimits.idxPayloadBytes) an IDX file may hold; the file is damaged")
        }
        return payload
    }

    /// Up to `count` bytes from `read`, fewer when the stream ends first.
    static func read(upTo count: Int, from read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(count, 1 << 20))
        while result.count < count {
            let wanted = min(chunk.count, count - result.count)
            let got = try chunk.withUnsafeMutableBytes { try read(UnsafeMutableRawBufferPointer(rebasing: $0[0..<wanted])) }
            if got <= 0 { break }
            result.append(contentsOf: chunk[0..<got])
        }
        return result
    }

    /// The first four (decompressed) bytes of a file, or nil if it has fewer or cannot be read.
    static func magic(_ path: String) -> [UInt8]? {
        guard let file = gzopen(path, "rb") else { return nil }
        defer { gzclose(file) }
        var bytes = [UInt8](repeating: 0, count: 4)
        let read = bytes.withUnsafeMutableBytes { gzread(file, $0.baseAddress, 4) }
        return read == 4 ? bytes : nil
    }
}
