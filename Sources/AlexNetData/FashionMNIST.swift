import Foundation

/// Fashion-MNIST (and MNIST) in IDX files, as Debian's `dataset-fashion-mnist` installs them.
public enum FashionMNIST {
    /// Where Debian's package puts the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// Loads the four files from `directory`, keeping at most `trainLimit` / `testLimit` images.
    public static func load(directory: String, trainLimit: Int? = nil, testLimit: Int? = nil) throws -> DataSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError("no data directory at \(directory): install Fashion-MNIST with `apt-get install dataset-fashion-mnist`, or pass --data DIR")
        }
        let train = try split(directory: directory, prefix: "train", limit: trainLimit)
        let test = try split(directory: directory, prefix: "t10k", limit: testLimit)
        guard train.height == test.height, train.width == test.width else {
            throw DataError("\(directory): training images are \(train.height)x\(train.width) but test images are \(test.height)x\(test.width)")
        }
        return DataSet(name: "fashion-mnist", train: train, test: test, classNames: classNames)
    }

    private static func split(directory: String, prefix: String, limit: Int?) throws -> LabeledImages {
        let images = try IDXFile(path: try find(directory, "\(prefix)-images-idx3-ubyte"), expectedRank: 3)
        let labels = try IDXFile(path: try find(directory, "\(prefix)-labels-idx1-ubyte"), expectedRank: 1)
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError("\(images.path) holds \(images.dimensions[0]) images but \(labels.path) holds \(labels.dimensions[0]) labels")
        }
        guard images.dimensions[0] > 0 else { throw DataError("\(images.path) holds no images") }
        if let bad = labels.bytes.firstIndex(where: { $0 >= classNames.count }) {
            throw DataError("\(labels.path): label \(labels.bytes[bad]) at index \(bad) is out of range 0...\(classNames.count - 1)")
        }
        return LabeledImages(height: images.dimensions[1], width: images.dimensions[2], pixels: images.bytes, labels: labels.bytes)
            .prefix(limit)
    }

    /// `name.gz` or `name` in `directory`.
    private static func find(_ directory: String, _ name: String) throws -> String {
        for candidate in ["\(name).gz", name] {
            let path = (directory as NSString).appendingPathComponent(candidate)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw DataError("\(directory) has no \(name)[.gz]: install `dataset-fashion-mnist`, or pass --data pointing at a folder with the four Fashion-MNIST IDX files")
    }
}
