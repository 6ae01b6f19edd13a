import Foundation

/// CIFAR-10 and CIFAR-100 in their published binary form: records of label byte(s) then a
/// 32x32 colour image as three 1024-byte planes (red, green, blue).
public enum CIFAR {
    public static let cifar10ClassNames = ["airplane", "automobile", "bird", "cat", "deer",
                                           "dog", "frog", "horse", "ship", "truck"]

    /// Loads `directory` (or its `cifar-10-batches-bin` / `cifar-100-binary` folder).
    public static func load(directory: String, format: DataFormat) throws -> DataSet {
        precondition(format == .cifar10 || format == .cifar100)
        let ten = format == .cifar10
        var folder = directory
        let inner = (directory as NSString).appendingPathComponent(ten ? "cifar-10-batches-bin" : "cifar-100-binary")
        if FileManager.default.fileExists(atPath: inner) { folder = inner }
        let trainFiles = ten ? (1...5).map { "data_batch_\($0).bin" } : ["train.bin"]
        let testFiles = ten ? ["test_batch.bin"] : ["test.bin"]
        let classes = ten ? 10 : 100
        let namesFile = (folder as NSString).appendingPathComponent(ten ? "batches.meta.txt" : "fine_label_names.txt")
        var names = ten ? cifar10ClassNames : (0..<100).map(String.init)
        if let bytes = try? ReadLimits.contents(of: namesFile, limit: 1 << 20, what: "class-name list"),
           let text = String(data: bytes, encoding: .utf8) {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if lines.count == classes { names = lines }
        }
        func read(_ files: [String]) throws -> LabeledImages {
            var pixels: [UInt8] = [], labels: [Int32] = []
            for file in files {
                let path = (folder as NSString).appendingPathComponent(file)
                let (p, l) = try records(path: path, labelBytes: ten ? 1 : 2, classes: classes)
                pixels += p
                labels += l
            }
            return LabeledImages(height: 32, width: 32, channels: 3, pixels: pixels, labels: labels)
        }
        return DataSet(name: ten ? "cifar-10" : "cifar-100", format: format, train: try read(trainFiles),
                       test: try read(testFiles), classNames: names)
    }

    /// One file's images (interleaved RGB) and labels; CIFAR-100's label is the fine one.
    static func records(path: String, labelBytes: Int, classes: Int) throws -> (pixels: [UInt8], labels: [Int32]) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataError("\(path) is missing: a CIFAR data set needs all its batch files; check --data")
        }
        let data = try ReadLimits.contents(of: path, limit: ReadLimits.cifarFileBytes, what: "CIFAR batch")
        return try records(data, path: path, labelBytes: labelBytes, classes: classes)
    }

    /// The records of a batch file's bytes; its size, already checked against the limit,
    /// bounds what is allocated.
    static func records(_ data: Data, path: String, labelBytes: Int, classes: Int) throws -> (pixels: [UInt8], labels: [Int32]) {
        let record = labelBytes + 3072
        guard data.count > 0, data.count % record == 0 else {
            throw DataError("\(path) is truncated or not a CIFAR batch: \(data.count) bytes is not a whole number of \(record)-byte records; re-download it")
        }
        let count = data.count / record
        var pixels = [UInt8](repeating: 0, count: count * 3072)
        var labels = [Int32](repeating: 0, count: count)
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            for i in 0..<count {
                let base = i * record
                let label = Int(bytes[base + labelBytes - 1])
                guard label < classes else {
                    throw DataError("\(path): record \(i) has label \(label), out of range 0...\(classes - 1); the file is corrupt or of the other CIFAR")
                }
                labels[i] = Int32(label)
                for p in 0..<1024 {
                    for c in 0..<3 { pixels[i * 3072 + p * 3 + c] = bytes[base + labelBytes + c * 1024 + p] }
                }
            }
        }
        return (pixels, labels)
    }
}
