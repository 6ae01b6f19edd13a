@testable import AlexNetData
import Foundation

/// A shard's index: records of offset, length, label, CRC-32 and source path, each checked
/// against the shard's size, the classes and the bytes left before it is used.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShardIndex(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    _ = try? ShardRecord.parse([UInt8](input.data), shardBytes: 1 << 20, classes: 10, maxPhotoBytes: 65536, source: "train-00000.index")
    return 0
}

/// One record as `prepare` writes it: 8-byte offset, 4-byte length, label, CRC-32, path length, path.
func record(offset: UInt64, length: UInt32, label: UInt32, path: String) -> [UInt8] {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: offset.littleEndian) { bytes += $0 }
    for word in [length, label, 0x1234_5678, UInt32(path.utf8.count)] { withUnsafeBytes(of: word.littleEndian) { bytes += $0 } }
    return bytes + Array(path.utf8)
}

func harnessSeeds() throws -> [String: Data] {
    ["two": Data(record(offset: 0, length: 1500, label: 3, path: "photos/train/cat/1.jpg") + record(offset: 1500, length: 900, label: 9, path: "photos/train/dog/2.png")),
     "one-no-path": Data(record(offset: 4096, length: 10, label: 0, path: ""))]
}
