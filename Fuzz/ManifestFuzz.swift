@testable import AlexNetTraining
import Foundation

/// The checkpoint manifest reader: JSON, its checksum, and every value's range.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    _ = try? Checkpoint.decodeManifest(input.data, path: "manifest.json")
    return 0
}
