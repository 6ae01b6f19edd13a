import Foundation

/// Reading `dataset.json` without trusting it: its own checksum, then every value against the
/// readers' limits, and every file it names kept inside the set's folder, so that a damaged or
/// edited manifest ends in one line naming the file and the value.
///
/// The checksum is that of the checkpoint manifest: the CRC-32 of the manifest's canonical
/// encoding (JSON with sorted keys and no whitespace, without the `checksum` key). The reader
/// decodes, encodes again and compares, so the check covers every value the program uses,
/// whatever the file's layout. Each shard, index and statistics.bin has its own size and CRC-32.
extension ShardManifest {
    /// The largest dataset.json read (a set of ILSVRC-2012's size takes about 300 KB).
    public static let maxBytes = 64 << 20
    /// The largest shard index: 1 GiB, 40 million photos of 24 bytes and a short path.
    static let maxIndexBytes = 1 << 30

    func canonicalEncoding() throws -> Data {
        var unsealed = self
        unsealed.checksum = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(unsealed)
    }

    func computedChecksum() throws -> String {
        let bytes = [UInt8](try canonicalEncoding())
        return String(format: "crc32:%08x", ShardFiles.crc32(bytes))
    }

    /// The manifest with its checksum set, as `prepare` writes it.
    public func sealed() throws -> ShardManifest {
        var manifest = self
        manifest.checksum = try computedChecksum()
        return manifest
    }

    /// statistics.bin's size for side S: the counts and sums of `PixelSums`, 8 bytes each.
    static func statisticsBytes(side: Int) -> Int { 8 * (3 + 2 * side * side * 3 + 3 + 9) }

    /// A name the set may hold: letters, digits, `-`, `_` and `.`, not starting with `.`, at
    /// most 255 bytes. So no `/`, no `..`, nothing empty, nothing outside the set's folder.
    static func isPlainName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "."), name.utf8.count <= 255 else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
    }

    /// Decodes a manifest's bytes and checks its version, its checksum and its values; `path`
    /// names it in errors.
    public static func decode(_ data: Data, path: String) throws -> ShardManifest {
        let manifest: ShardManifest
        do { manifest = try JSONDecoder().decode(ShardManifest.self, from: data) } catch {
            throw ShardFiles.damaged(path, "not a manifest of this program: \(JSONDecodingProblem.describe(error))")
        }
        guard manifest.version == currentVersion else {
            throw DataError("\(path) is shard format \(manifest.version); this program reads \(currentVersion): prepare the data again into a new folder")
        }
        guard let checksum = manifest.checksum else { throw ShardFiles.damaged(path, "it has no checksum") }
        let computed: String
        do { computed = try manifest.computedChecksum() } catch { throw ShardFiles.damaged(path, "its values cannot be encoded again") }
        guard checksum == computed else {
            throw ShardFiles.damaged(path, "it does not match its own checksum (\(checksum), its contents give \(computed)): it was changed")
        }
        if let problem = manifest.problem() { throw ShardFiles.damaged(path, problem) }
        return manifest
    }

    /// What is wrong with the values, or nil.
    func problem() -> String? {
        guard (1...ReadLimits.storedImageSide).contains(imageSize) else { return "S is \(imageSize), outside 1...\(ReadLimits.storedImageSide)" }
        guard channels == 3 else { return "\(channels) channels, not 3" }
        guard (1...100).contains(quality) else { return "JPEG quality \(quality), outside 1...100" }
        guard (1...ReadLimits.classes).contains(classNames.count) else {
            return "\(classNames.count) classes, outside 1...\(ReadLimits.classes) (the most this program trains)"
        }
        if let empty = classNames.firstIndex(where: \.isEmpty) { return "class \(empty) has an empty name" }
        guard Set(classNames).count == classNames.count else {
            let name = Dictionary(grouping: classNames, by: { $0 }).first { $0.value.count > 1 }!.key
            return "the class \(name.debugDescription) is listed more than once"
        }
        var names = Set<String>(), photos = 0
        for entry in train + val {
            guard Self.isPlainName(entry.name) else { return "a shard is named \(entry.name.debugDescription), not a plain file name inside the set" }
            guard names.insert(entry.name).inserted else { return "the shard \(entry.name) is listed more than once" }
            guard entry.photos >= 0, entry.bytes >= 0, (0...Self.maxIndexBytes).contains(entry.indexBytes) else {
                return "the shard \(entry.name) claims \(entry.photos) photos, \(entry.bytes) bytes and a \(entry.indexBytes)-byte index"
            }
            // Each photo takes at least one byte of its shard and a 24-byte record of its index.
            guard entry.photos <= entry.bytes, entry.photos <= entry.indexBytes / ShardRecord.fixedBytes else {
                return "the shard \(entry.name) claims \(entry.photos) photos in \(entry.bytes) bytes and a \(entry.indexBytes)-byte index"
            }
            let (sum, overflow) = photos.addingReportingOverflow(entry.photos)
            guard !overflow else { return "its photo counts overflow" }
            photos = sum
        }
        guard statistics.bytes == Self.statisticsBytes(side: imageSize) else {
            return "statistics.bin is given \(statistics.bytes) bytes; S = \(imageSize) needs \(Self.statisticsBytes(side: imageSize))"
        }
        return nil
    }
}
