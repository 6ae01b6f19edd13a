import CZlib
import Foundation

/// How `prepare` stores each photo in its shards.
public enum ShardEncoding: String, Codable, Sendable {
    /// JPEG (libjpeg-turbo, 4:2:0 chroma), about a tenth of the raw size at quality 90.
    case jpeg
    /// The `S x S x 3` bytes themselves: no decoding, ten times the disk space.
    case raw
}

/// The folder `prepare` writes (documented in docs/imagenet.md):
///
///     dataset.json            this manifest; written last, so its presence marks a finished set
///     statistics.bin          the training split's `PixelSums` (mean image and colour PCA)
///     train-00000.shard ...   the encoded photos back to back
///     train-00000.index ...   one record per photo (see `ShardRecord`)
///     val-00000.shard ...
///     prepare-state.bin       while running: what is done, so that a stopped run resumes
public struct ShardManifest: Codable, Sendable, Equatable {
    public static let fileName = "dataset.json"
    public static let statisticsName = "statistics.bin"
    public static let stateName = "prepare-state.bin"
    /// 2: the manifest carries its own checksum and that of statistics.bin.
    public static let currentVersion = 2

    public var version = ShardManifest.currentVersion
    public var name: String
    /// S: every photo is an `S x S` square.
    public var imageSize: Int
    public var channels: Int
    public var encoding: ShardEncoding
    public var quality: Int
    public var classNames: [String]
    /// A hash of what was asked for (the source files' names, labels, S, encoding): a resumed or
    /// repeated `prepare` must match it, and each shard's `sources` its photos' sizes and times.
    public var fingerprint: String
    public var train: [ShardEntry]
    public var val: [ShardEntry]
    /// Files left out with `--skip-bad-images`, with why.
    public var skipped: [String]
    /// statistics.bin's size and CRC-32.
    public var statistics = FileEntry(bytes: 0, crc32: 0)
    /// `crc32:` and eight hex digits: the CRC-32 of this manifest's canonical encoding without
    /// this key (ShardManifestChecks.swift).
    public var checksum: String?

    /// A file's size and CRC-32.
    public struct FileEntry: Codable, Sendable, Equatable {
        public var bytes: Int
        public var crc32: UInt32
    }

    /// One shard file and its index.
    public struct ShardEntry: Codable, Sendable, Equatable {
        public var name: String
        public var photos: Int
        public var bytes: Int
        public var crc32: UInt32
        public var indexBytes: Int
        public var indexCRC32: UInt32
        /// A hash of its source photos' sizes and modification times: a shard made from files
        /// that have changed since is not this data set's.
        public var sources: String?
    }
}

/// One photo in a shard's index: 24 bytes, little-endian, then the source path.
public struct ShardRecord: Equatable, Sendable {
    public var offset: UInt64
    public var length: UInt32
    public var label: UInt32
    public var crc32: UInt32
    public var path: String

    static let fixedBytes = 24
    static let maxPathBytes = 4096

    func append(to out: inout [UInt8]) {
        let utf8 = Array(path.utf8.prefix(Self.maxPathBytes))
        for word in [offset] { withUnsafeBytes(of: word.littleEndian) { out += $0 } }
        for word in [length, label, crc32, UInt32(utf8.count)] { withUnsafeBytes(of: word.littleEndian) { out += $0 } }
        out += utf8
    }

    /// Reads every record of an index, checking each size against `shardBytes`, `classes` and
    /// the bytes that remain before it is used.
    public static func parse(_ bytes: [UInt8], shardBytes: Int, classes: Int, maxPhotoBytes: Int, source: String) throws -> [ShardRecord] {
        var records: [ShardRecord] = []
        var at = 0
        func word32(_ offset: Int) -> UInt32 { bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) } }
        while at < bytes.count {
            guard bytes.count - at >= fixedBytes else { throw ShardFiles.damaged(source, "a record is cut short at byte \(at)") }
            let offset = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
            let (length, label, crc, pathLength) = (word32(at + 8), word32(at + 12), word32(at + 16), Int(word32(at + 20)))
            guard length > 0, Int(length) <= maxPhotoBytes, offset <= UInt64(shardBytes), UInt64(length) <= UInt64(shardBytes) - offset else {
                throw ShardFiles.damaged(source, "photo \(records.count) claims \(length) bytes at offset \(offset) of a \(shardBytes)-byte shard")
            }
            guard Int(label) < classes else { throw ShardFiles.damaged(source, "photo \(records.count) has label \(label) of \(classes) classes") }
            guard pathLength <= maxPathBytes, pathLength <= bytes.count - at - fixedBytes else {
                throw ShardFiles.damaged(source, "photo \(records.count) has a \(pathLength)-byte path")
            }
            let path = String(decoding: bytes[(at + fixedBytes)..<(at + fixedBytes + pathLength)], as: UTF8.self)
            records.append(ShardRecord(offset: offset, length: length, label: label, crc32: crc, path: path))
            at += fixedBytes + pathLength
        }
        return records
    }
}

/// File helpers for shards: checksums, whole-file and ranged reads, and writes that a reader
/// never sees half of.
enum ShardFiles {
    static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        UInt32(CZlib.crc32(uLong(crc), bytes.bindMemory(to: Bytef.self).baseAddress, uInt(bytes.count)))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { crc32($0) } }

    static func damaged(_ file: String, _ why: String) -> DataError {
        DataError("\(file) is damaged (\(why)): run `alexnet-split prepare` again into a new folder")
    }

    static func size(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    /// The whole file, after checking that it has `expected` bytes (when given).
    static func read(_ path: String, expected: Int? = nil) throws -> [UInt8] {
        guard let size = size(path) else { throw DataError("cannot read \(path): \(String(cString: strerror(errno)))") }
        if let expected, size != expected { throw damaged(path, "\(size) bytes, the manifest says \(expected)") }
        return try read(path, offset: 0, count: size)
    }

    /// `count` bytes at `offset`.
    static func read(_ path: String, offset: UInt64, count: Int) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw DataError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            guard got > 0 else { throw damaged(path, "it ends before byte \(Int(offset) + count)") }
            done += got
        }
        return bytes
    }

    /// Writes `bytes` to a temporary name beside `path`, fsyncs, and renames it into place.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        try AtomicFile.write(Data(bytes), to: path)
    }
}
