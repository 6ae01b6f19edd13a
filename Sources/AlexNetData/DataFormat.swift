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

    /// The visible entries of a directory, sorted; a clear error if it is not one, or if an
    /// entry's name is not UTF-8. Such a name cannot be a class name (it could not be written
    /// to config.json or a checkpoint), and leaving the entry out would quietly train on less
    /// data, so it is refused with its bytes shown and the fix.
    static func listing(_ directory: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError("no data directory at \(directory): pass --data DIR (for the default Fashion-MNIST, `apt-get install dataset-fashion-mnist`)")
        }
        guard let names = rawNames(directory) else { throw DataError("cannot list \(directory): check its permissions") }
        var result: [String] = []
        for bytes in names where bytes.first != UInt8(ascii: ".") {
            guard let name = String(validating: bytes, as: UTF8.self) else {
                throw DataError("\(directory) holds \"\(escaped(bytes))\", whose name is not valid UTF-8: rename it (for example with `convmv -f latin1 -t utf8 -r --notest`) or move it out of the data folder")
            }
            result.append(name)
        }
        return result.sorted()
    }

    /// The entries of a directory as the bytes the file system holds (Foundation would turn a
    /// name that is not UTF-8 into replacement characters, and so into a path that does not exist).
    static func rawNames(_ directory: String) -> [[UInt8]]? {
        guard let stream = opendir(directory) else { return nil }
        defer { closedir(stream) }
        var names: [[UInt8]] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] { names.append(name) }
        }
        return names
    }

    /// A file name's bytes for an error line: printable ASCII as it is, the rest as \xNN.
    static func escaped(_ bytes: [UInt8]) -> String {
        bytes.map { (0x20..<0x7F).contains($0) && $0 != UInt8(ascii: "\\") ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined()
    }
}

/// How to read a data set: the user's choices (`settings`: format, held-out share, bad
/// images), and what the caller resolved from them (the stored size, the limits, the seed).
public struct DataLoadOptions: Sendable {
    /// The run's data settings; only `format`, `valFraction` and `skipBadImages` are read here.
    public var settings = DataSettings()
    /// Keys the held-out split.
    public var seed: UInt64 = 1
    /// Image folders: each photo's shorter side is scaled to this, then its centre square kept.
    public var imageSize = 36
    /// Channels to decode photos to (1 or 3).
    public var channels = 3
    public var trainLimit: Int?
    public var testLimit: Int?
    /// Decoding threads.
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init(settings: DataSettings = DataSettings()) { self.settings = settings }

    /// Nil: detected from the directory.
    public var format: DataFormat? {
        get { settings.format }
        set { settings.format = newValue }
    }
    /// For a single folder of classes: the share of each class held out for testing.
    public var valFraction: Double? {
        get { settings.valFraction }
        set { settings.valFraction = newValue }
    }
    /// Leave unreadable image files out (and list them) instead of stopping.
    public var skipBadImages: Bool {
        get { settings.skipBadImages }
        set { settings.skipBadImages = newValue }
    }
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
