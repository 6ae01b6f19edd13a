import AlexNetData
@testable import AlexNetTraining
import Foundation

/// The safetensors reader, and the statistics file read through it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    _ = try? SafeTensors.decode(input.data, source: "fuzz.safetensors")
    _ = try? InputStatistics.decode(input.data, source: "statistics.safetensors")
    return 0
}

func harnessSeeds() throws -> [String: Data] {
    let tower = SafeTensors.encode([
        SafeTensors.Tensor(name: "conv1.weight", shape: [2, 1, 2, 2], values: (0..<8).map { Float($0) / 8 }),
        SafeTensors.Tensor(name: "conv1.bias", shape: [2], values: [0.5, -0.5]),
    ], metadata: ["preset": "small", "model": "split", "tower": "0", "towers_in_file": "1", "step": "3"])
    let photo = PhotoStatistics(size: 2, channels: 3, meanKind: .pixel, mean: (0..<12).map { Float($0) * 10 }, scale: 50,
                                eigenvalues: [0.2, 0.02, 0.002], eigenvectors: [1, 0, 0, 0, 1, 0, 0, 0, 1])
    return ["tower": tower, "statistics": InputStatistics(photo: photo).encoded()!]
}
