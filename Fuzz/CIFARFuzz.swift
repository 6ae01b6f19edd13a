@testable import AlexNetData
import Foundation

/// The CIFAR batch reader, as CIFAR-10 (one label byte) and CIFAR-100 (two).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    _ = try? CIFAR.records(input.data, path: "fuzz.bin", labelBytes: 1, classes: 10)
    _ = try? CIFAR.records(input.data, path: "fuzz.bin", labelBytes: 2, classes: 100)
    return 0
}

func harnessSeeds() throws -> [String: Data] {
    let image = (0..<3072).map { UInt8($0 % 251) }
    return ["cifar10": Data([3] + image + [9] + image), "cifar100": Data([1, 42] + image)]
}
