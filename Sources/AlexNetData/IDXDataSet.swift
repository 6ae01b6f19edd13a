import Foundation

/// Fashion-MNIST's defaults, as Debian's `dataset-fashion-mnist` installs it.
public enum FashionMNIST {
    /// Where Debian's package puts the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
}

/// A folder of IDX files (MNIST, Fashion-MNIST, EMNIST), gzip or raw. The files are found by
/// their magic numbers (images 0x00000803, labels 0x00000801); "train" in a name marks the
/// training split, "t10k" or "test" the test split.
public enum IDXDataSet {
    struct Files {
        var trainImages: String, trainLabels: String, testImages: String, testLabels: String
    }

    /// Loads the training and test splits, keeping at most `trainLimit` / `testLimit` images.
    /// Labels run from 0; there are at least 10 classes, and as many as the training labels need.
    public static func load(directory: String, trainLimit: Int? = nil, testLimit: Int? = nil) throws -> DataSet {
        _ = try DataFormat.listing(directory)
        guard let files = try findFiles(directory) else {
            throw DataError("\(directory) has no IDX image and label files for both splits (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-…): install `dataset-fashion-mnist`, or pass --data pointing at a folder that has them")
        }
        let train = try split(images: files.trainImages, labels: files.trainLabels, limit: trainLimit)
        let test = try split(images: files.testImages, labels: files.testLabels, limit: testLimit)
        guard train.height == test.height, train.width == test.width else {
            throw DataError("\(directory): training images are \(train.height)x\(train.width) but test images are \(test.height)x\(test.width)")
        }
        let classes = max(10, Int(train.labels.max() ?? 0) + 1)
        if let bad = test.labels.firstIndex(where: { $0 >= classes }) {
            throw DataError("\(files.testLabels): label \(test.labels[bad]) at index \(bad) is out of range 0...\(classes - 1) (the training labels' range); is it the right file?")
        }
        let fashion = directory.lowercased().contains("fashion") && classes == 10
        let names = fashion ? FashionMNIST.classNames : (0..<classes).map(String.init)
        return DataSet(name: fashion ? "fashion-mnist" : (directory as NSString).lastPathComponent, format: .idx,
                       train: train, test: test, classNames: names)
    }

    private static func split(images imagePath: String, labels labelPath: String, limit: Int?) throws -> LabeledImages {
        let images = try IDXFile(path: imagePath, expectedRank: 3)
        let labels = try IDXFile(path: labelPath, expectedRank: 1)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError("\(images.path) holds \(images.dimensions[0]) images but \(labels.path) holds \(labels.dimensions[0]) labels")
        }
        guard images.dimensions[0] > 0 else { throw DataError("\(images.path) holds no images") }
        return LabeledImages(height: images.dimensions[1], width: images.dimensions[2], pixels: images.bytes,
                             labels: labels.bytes.map { Int32($0) }).prefix(limit)
    }

    /// Whether `directory` holds files named like IDX files, or starting with an IDX image file's magic number.
    static func looksLikeIDX(_ directory: String) -> Bool {
        ((try? DataFormat.listing(directory)) ?? []).contains { name in
            let lower = name.lowercased()
            return (lower.contains("idx") && lower.contains("ubyte"))
                || IDXFile.magic((directory as NSString).appendingPathComponent(name)) == [0, 0, 0x08, 3]
        }
    }

    /// The four files, told apart by name ("images"/"labels", "train"/"t10k"/"test") or else
    /// by magic number. Nil when the folder holds no IDX file at all; an error naming the file
    /// when one is wrong or missing.
    static func findFiles(_ directory: String) throws -> Files? {
        var found: [String: [String]] = [:]  // "train-images", "test-labels", ...
        for name in try DataFormat.listing(directory) {
            let path = (directory as NSString).appendingPathComponent(name)
            let lower = name.lowercased()
            let named = lower.contains("idx") && lower.contains("ubyte")
            guard let magic = IDXFile.magic(path), magic.prefix(3) == [0, 0, 0x08], magic[3] == 1 || magic[3] == 3 else {
                if named { throw DataError("\(path) is not an IDX file of unsigned bytes (wrong magic number); replace it, or remove it from --data") }
                continue
            }
            let kind = lower.contains("images") ? 3 : lower.contains("labels") ? 1 : Int(magic[3])
            if Int(magic[3]) != kind {
                throw DataError("\(path) has \(magic[3]) dimensions where \(kind) were expected; is it the right file?")
            }
            let split = lower.contains("train") ? "train" : (lower.contains("t10k") || lower.contains("test")) ? "test" : nil
            guard let split else { continue }
            found["\(split)-\(kind == 3 ? "images" : "labels")", default: []].append(path)
        }
        if found.isEmpty { return nil }
        let expected = ["train-images": "train-images-idx3-ubyte", "train-labels": "train-labels-idx1-ubyte",
                        "test-images": "t10k-images-idx3-ubyte", "test-labels": "t10k-labels-idx1-ubyte"]
        for key in expected.keys.sorted() {
            let paths = found[key] ?? []
            if paths.isEmpty { throw DataError("\(directory) has no \(key.replacingOccurrences(of: "-", with: " ")) file (like \(expected[key]!)[.gz]): add it, or pass --data pointing at a complete set") }
            if paths.count > 1 { throw DataError("\(directory) has several \(key.replacingOccurrences(of: "-", with: " ")) files (\(paths.joined(separator: ", "))): keep one set per folder") }
        }
        return Files(trainImages: found["train-images"]![0], trainLabels: found["train-labels"]![0],
                     testImages: found["test-images"]![0], testLabels: found["test-labels"]![0])
    }
}
