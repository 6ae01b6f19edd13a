import AlexNetCore
import Foundation

/// A data set written by `prepare`, opened for reading: every index is read and checked (sizes
/// before anything is allocated), then photos are read one at a time and decoded on demand.
/// Memory holds 20 bytes per photo, not its pixels.
public final class ShardSet: Sendable {
    public let directory: String
    public let manifest: ShardManifest
    public let train: ShardSplit
    public let val: ShardSplit
    /// The training split's sums, gathered by `prepare`: the mean image and colour PCA.
    public let pixelSums: PixelSums

    /// Whether `directory` holds a finished `prepare` output.
    public static func isShardSet(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(ShardManifest.fileName))
    }

    /// Whether `directory` holds a `prepare` that has not finished.
    public static func isUnfinished(_ directory: String) -> Bool {
        !isShardSet(directory) && FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(ShardManifest.stateName))
    }

    public init(directory: String) throws {
        let manifestPath = (directory as NSString).appendingPathComponent(ShardManifest.fileName)
        guard let size = ShardFiles.size(manifestPath), size <= ShardManifest.maxBytes else {
            throw DataError("\(manifestPath) is missing or too large: point --data at a folder written by `alexnet-split prepare`")
        }
        let manifest = try ShardManifest.decode(Data(try ShardFiles.read(manifestPath)), path: manifestPath)
        self.directory = directory
        self.manifest = manifest
        train = try ShardSplit(directory: directory, entries: manifest.train, manifest: manifest)
        val = try ShardSplit(directory: directory, entries: manifest.val, manifest: manifest)
        let statisticsPath = (directory as NSString).appendingPathComponent(ShardManifest.statisticsName)
        let statistics = try ShardFiles.read(statisticsPath, expected: manifest.statistics.bytes)
        guard ShardFiles.crc32(statistics) == manifest.statistics.crc32 else {
            throw ShardFiles.damaged(statisticsPath, "its checksum does not match the manifest")
        }
        pixelSums = try PixelSums.decode(statistics, source: statisticsPath)
        guard pixelSums.size == manifest.imageSize, pixelSums.count == UInt64(train.count) else {
            throw ShardFiles.damaged(statisticsPath, "sums of \(pixelSums.count) photos of side \(pixelSums.size), for \(train.count) of side \(manifest.imageSize)")
        }
    }

    /// Bytes of the decoded photos of both splits (with limits), as the in-memory path would hold them.
    public func decodedBytes(trainLimit: Int?, testLimit: Int?) -> Int {
        let photo = manifest.imageSize * manifest.imageSize * manifest.channels
        return photo * (min(train.count, trainLimit ?? .max) + min(val.count, testLimit ?? .max))
    }

    /// Both splits decoded into memory, on every core, every shard's checksum checked.
    public func load(trainLimit: Int?, testLimit: Int?, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> DataSet {
        try train.verifyChecksums(photos: trainLimit)
        try val.verifyChecksums(photos: testLimit)
        return DataSet(name: manifest.name, format: .shards, train: try train.decodeAll(limit: trainLimit, threads: threads),
                       test: try val.decodeAll(limit: testLimit, threads: threads), classNames: manifest.classNames, skipped: manifest.skipped)
    }
}

/// One split's photos: where each one lies and its label.
public final class ShardSplit: Sendable {
    struct Location: Sendable {
        var shard: Int32
        var length: UInt32
        var offset: UInt64
        var crc32: UInt32
    }

    let directory: String
    let entries: [ShardManifest.ShardEntry]
    let locations: [Location]
    public let labels: [Int32]
    public let imageSize: Int
    public let channels: Int
    let encoding: ShardEncoding

    public var count: Int { labels.count }
    public var photoBytes: Int { imageSize * imageSize * channels }

    init(directory: String, entries: [ShardManifest.ShardEntry], manifest: ShardManifest) throws {
        self.directory = directory
        self.entries = entries
        imageSize = manifest.imageSize
        channels = manifest.channels
        encoding = manifest.encoding
        let raw = imageSize * imageSize * channels
        // A JPEG of a square is never larger than a few times its raw size.
        let maxPhotoBytes = encoding == .raw ? raw : 4 * raw + 65536
        var locations: [Location] = [], labels: [Int32] = []
        for (shard, entry) in entries.enumerated() {
            let records = try Self.records(directory: directory, entry: entry, classes: manifest.classNames.count, maxPhotoBytes: maxPhotoBytes)
            for record in records {
                guard encoding != .raw || Int(record.length) == raw else {
                    throw ShardFiles.damaged(entry.name, "a raw photo of \(record.length) bytes, not \(raw)")
                }
                locations.append(Location(shard: Int32(shard), length: record.length, offset: record.offset, crc32: record.crc32))
                labels.append(Int32(record.label))
            }
        }
        self.locations = locations
        self.labels = labels
    }

    /// A shard's index, checked against the manifest: size, checksum, photo count.
    static func records(directory: String, entry: ShardManifest.ShardEntry, classes: Int, maxPhotoBytes: Int) throws -> [ShardRecord] {
        let root = directory as NSString
        let indexPath = root.appendingPathComponent(entry.name + ".index"), shardPath = root.appendingPathComponent(entry.name + ".shard")
        guard entry.indexBytes >= 0, entry.indexBytes <= 1 << 30, entry.photos >= 0 else {
            throw ShardFiles.damaged(indexPath, "the manifest gives it \(entry.indexBytes) bytes")
        }
        guard ShardFiles.size(shardPath) == entry.bytes else {
            throw ShardFiles.damaged(shardPath, "\(ShardFiles.size(shardPath).map { "\($0) bytes" } ?? "missing"), the manifest says \(entry.bytes)")
        }
        let bytes = try ShardFiles.read(indexPath, expected: entry.indexBytes)
        guard ShardFiles.crc32(bytes) == entry.indexCRC32 else { throw ShardFiles.damaged(indexPath, "its checksum does not match the manifest") }
        let records = try ShardRecord.parse(bytes, shardBytes: entry.bytes, classes: classes, maxPhotoBytes: maxPhotoBytes, source: indexPath)
        guard records.count == entry.photos else { throw ShardFiles.damaged(indexPath, "\(records.count) photos, the manifest says \(entry.photos)") }
        return records
    }

    func shardPath(_ shard: Int) -> String { (directory as NSString).appendingPathComponent(entries[shard].name + ".shard") }

    /// Reads whole and checks the checksum of every shard that holds one of the first `photos`
    /// photos (all when nil).
    func verifyChecksums(photos: Int?) throws {
        var before = 0
        for shard in entries.indices where before < (photos ?? .max) {
            before += entries[shard].photos
            let bytes = try ShardFiles.read(shardPath(shard), expected: entries[shard].bytes)
            guard ShardFiles.crc32(bytes) == entries[shard].crc32 else {
                throw ShardFiles.damaged(shardPath(shard), "its checksum does not match the manifest")
            }
        }
    }

    /// Photo `index` as `S x S x channels` bytes, interleaved; its checksum checked.
    public func pixels(_ index: Int) throws -> [UInt8] {
        let location = locations[index]
        let path = shardPath(Int(location.shard))
        let bytes = try ShardFiles.read(path, offset: location.offset, count: Int(location.length))
        guard ShardFiles.crc32(bytes) == location.crc32 else {
            throw ShardFiles.damaged(path, "photo \(index) at offset \(location.offset) does not match its checksum")
        }
        if encoding == .raw { return bytes }
        let image = try ImageFile.decodeJPEG(Data(bytes), path: "\(path) photo \(index)", channels: channels,
                                              pixelLimit: imageSize * imageSize)
        guard image.width == imageSize, image.height == imageSize else {
            throw ShardFiles.damaged(path, "photo \(index) is \(image.width)x\(image.height), not \(imageSize)x\(imageSize)")
        }
        return image.pixels
    }

    /// The first `limit` photos (all when nil), decoded on `threads` threads.
    public func decodeAll(limit: Int?, threads: Int) throws -> LabeledImages {
        let n = min(count, limit ?? .max), stride = photoBytes
        var pixels = [UInt8](repeating: 0, count: n * stride)
        var failures = [String?](repeating: nil, count: n)
        pixels.withUnsafeMutableBufferPointer { out in
            failures.withUnsafeMutableBufferPointer { failed in
                let (photos, why) = (DisjointBlocks(out, stride: stride), DisjointBlocks(failed))
                DispatchQueue.concurrentPerform(iterations: max(1, min(threads, n))) { worker in
                    for i in Swift.stride(from: worker, to: n, by: max(1, min(threads, n))) {
                        do { photos.block(i).baseAddress!.update(from: try self.pixels(i), count: stride) } catch { why.block(i)[0] = "\(error)" }
                    }
                }
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw DataError(failure) }
        return LabeledImages(height: imageSize, width: imageSize, channels: channels, pixels: pixels, labels: Array(labels.prefix(n)))
    }
}
