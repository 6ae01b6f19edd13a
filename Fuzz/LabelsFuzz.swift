@testable import AlexNetData
import Foundation

/// The validation label files: the input split at its first NUL byte into a label file (a CSV
/// such as Kaggle's LOC_val_solution.csv, or the devkit's ground truth) and a `--synsets` file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLabels(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = FuzzInput(start, count)
    let parts = input.data.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
    let labels = String(decoding: parts.first ?? Data(), as: UTF8.self)
    let synsets = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : nil
    _ = try? ValidationLabels(text: labels, file: "labels", synsets: synsets.map { ($0, "synsets.txt") })
    return 0
}

func harnessSeeds() throws -> [String: Data] {
    let csv = "ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 2 3 100 200\nILSVRC2012_val_00000002,n09193705 0 0 5 5 n09193705 1 1 2 2\n"
    let truth = "2\n1\n2\n", synsets = "n01440764 tench, Tinca tinca\nn01443537 goldfish\n"
    return ["kaggle.csv": Data(csv.utf8), "devkit.txt": Data((truth + "\u{0}" + synsets).utf8),
            "crlf.txt": Data((truth.replacingOccurrences(of: "\n", with: "\r\n") + "\u{0}" + synsets).utf8)]
}
