@testable import AlexNetData
import Foundation

/// The IDX reader, as a labels file (rank 1) and as an images file (rank 3).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    for rank in [1, 3] {
        var input = FuzzInput(start, count)
        _ = try? IDXFile(source: "fuzz.idx", expectedRank: rank) { input.read(into: $0) }
    }
    return 0
}

/// An IDX file's bytes: magic (0, 0, 0x08, rank), big-endian sizes, payload.
func idx(_ dimensions: [Int], _ payload: [UInt8]) -> Data {
    var bytes: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return Data(bytes + payload)
}

func harnessSeeds() throws -> [String: Data] {
    ["labels": idx([4], [0, 1, 2, 9]), "images": idx([2, 3, 2], (0..<12).map { UInt8($0) }),
     "one-image": idx([1, 28, 28], [UInt8](repeating: 128, count: 784))]
}
