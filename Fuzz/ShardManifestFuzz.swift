@testable import AlexNetData
import Foundation

/// `dataset.json`'s reader: JSON, its own checksum, every value's range, the names it gives files.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShardManifest(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    _ = try? ShardManifest.decode(input.data, path: "dataset.json")
    return 0
}

func harnessSeeds() throws -> [String: Data] {
    func entry(_ name: String) -> ShardManifest.ShardEntry {
        ShardManifest.ShardEntry(name: name, photos: 2, bytes: 3000, crc32: 7, indexBytes: 80, indexCRC32: 9, sources: "0123456789abcdef")
    }
    var manifest = ShardManifest(name: "photos", imageSize: 8, channels: 3, encoding: .jpeg, quality: 90, classNames: ["ant", "bee"],
                                 fingerprint: "fedcba9876543210", train: [entry("train-00000"), entry("train-00001")], val: [entry("val-00000")],
                                 skipped: ["photos/train/ant/x.png is empty"])
    manifest.statistics = ShardManifest.FileEntry(bytes: 8 * (3 + 2 * 8 * 8 * 3 + 3 + 9), crc32: 5)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return ["sealed.json": try encoder.encode(try manifest.sealed()), "unsealed.json": try encoder.encode(manifest)]
}
