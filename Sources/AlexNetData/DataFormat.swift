import Foundation

/// The kinds of data set that `--data` can point at.
public enum DataFormat: String, CaseIterable, Sendable, Codable {
    /// IDX files (MNIST, Fashion-MNIST, EMNIST), gzip or raw.
    case idx
    /// CIFAR-10's binary batches (`data_batch_1.bin` ... `test_batch.bin`).
    case cifar10
    /// CIFAR-100's binary files (`train.bin`, `test.bin`).
    case cifar100
    /// A folder per class of JPEG or PNG files (the ImageNet layout).
    case folder
    /// Shards written by `alexnet-split prepare` (photos stored as `S x S` squares).
    case shards

    /// Whether the format holds colour photographs (the paper's preprocessing is the default).
    public var isPhotographic: Bool { self != .idx }

    /// Works out the format from what `directory` holds.
    public static func detect(_ directory: String) throws -> DataFormat {
        let names = try DataFormat.listing(directory)
        if names.contains(ShardManifest.fileName) { return .shards }
        if names.contains(ShardManifest.stateName) {
            throw DataError("\(directory) holds a `prepare` that has not finished: run the same `alexnet-split prepare` again to complete it")
        }
        if names.contains("data_batch_1.bin") || names.contains("cifar-10-batches-bin") { return .cifar10 }
        if (names.contains("train.bin") && names.contains("test.bin")) || names.contains("cifar-100-binary") { return .cifar100 }
        if IDXDataSet.looksLikeIDX(directory) { return .idx }
        if ImageFolder.hasClassFolders(directory) { return .folder }
        throw DataError("cannot tell what data \(directory) holds: expected IDX files, CIFAR binary batches, or a folder per class of images (train/<class>/*, val/<class>/*); pass --format if it is one of them")
    }

    /// The visible entries of a directory, sorted; a clear error if it is not one.
    static func listing(_ directory: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError("no data directory at \(directory): pass --data DIR (for the default Fashion-MNIST, `apt-get install dataset-fashion-mnist`)")
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw DataError("cannot list \(directory): check its permissions")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }
}

/// How to read a data set.
public struct DataLoadOptions: Sendable {
    /// Nil: detected from the directory.
    public var format: DataFormat?
    /// For a single folder of classes: the share of each class held out for testing.
    public var valFraction: Double?
    /// Keys the held-out split.
    public var seed: UInt64 = 1
    /// Leave unreadable image files out (and list them) instead of stopping.
    public var skipBadImages = false
    /// Image folders: each photo's shorter side is scaled to this, then its centre square kept.
    public var imageSize = 36
    /// Channels to decode photos to (1 or 3).
    public var channels = 3
    public var trainLimit: Int?
    public var testLimit: Int?
    /// Decoding threads.
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init() {}
}

/// Reads any supported data set.
public enum DataSource {
    public static func load(directory: String, options: DataLoadOptions) throws -> DataSet {
        let format = try options.format ?? DataFormat.detect(directory)
        switch format {
        case .idx:
            return try IDXDataSet.load(directory: directory, trainLimit: options.trainLimit, testLimit: options.testLimit)
        case .cifar10, .cifar100:
            return try CIFAR.load(directory: directory, format: format).limited(train: options.trainLimit, test: options.testLimit)
        case .folder:
            return try ImageFolder.load(directory: directory, options: options)
        case .shards:
            return try ShardSet(directory: directory).load(trainLimit: options.trainLimit, testLimit: options.testLimit, threads: options.threads)
        }
    }
}
