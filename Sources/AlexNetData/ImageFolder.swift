import AlexNetCore
import Foundation

/// A folder per class of JPEG or PNG files: `DIR/train/<class>/*` and `DIR/val/<class>/*`
/// (the ImageNet layout), or `DIR/<class>/*` split by `--val-fraction`. Class names are the
/// folder names in sorted order. Every photo is decoded once, in parallel, and kept as the
/// paper kept it: its shorter side scaled to the options' image size, then the centre square.
public enum ImageFolder {
    static let validationNames = ["val", "validation", "test"]

    /// Whether `directory` has sub-folders, as a folder of classes (or of splits) does.
    static func hasClassFolders(_ directory: String) -> Bool {
        ((try? DataFormat.listing(directory)) ?? []).contains { isDirectory((directory as NSString).appendingPathComponent($0)) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }

    /// One labelled file.
    struct Item {
        var path: String
        var label: Int32
    }

    public static func load(directory: String, options: DataLoadOptions) throws -> DataSet {
        guard (1...ReadLimits.storedImageSide).contains(options.imageSize) else {
            throw DataError("--image-size \(options.imageSize) is outside 1...\(ReadLimits.storedImageSide) (the paper's is 256): pass a smaller size")
        }
        var (train, test, classNames) = try files(directory: directory, valFraction: options.valFraction, seed: options.seed)
        if let limit = options.trainLimit { train = Array(train.prefix(limit)) }
        if let limit = options.testLimit { test = Array(test.prefix(limit)) }
        var skipped: [String] = []
        let trainImages = try decode(train, options: options, skipped: &skipped)
        let testImages = try decode(test, options: options, skipped: &skipped)
        return DataSet(name: (directory as NSString).lastPathComponent, format: .folder, train: trainImages, test: testImages,
                       classNames: classNames, skipped: skipped)
    }

    /// The labelled files of both splits and the class names. `flatValidation` labels the files
    /// of a `val/` folder that has no class folders (ILSVRC-2012's); without it such a folder is an error.
    static func files(directory: String, valFraction: Double?, seed: UInt64,
                      flatValidation: ((_ folder: String, _ classNames: [String]) throws -> [Item])? = nil) throws -> (train: [Item], test: [Item], classNames: [String]) {
        let root = directory as NSString
        let entries = try DataFormat.listing(directory)
        let trainFolder = root.appendingPathComponent("train")
        var train: [Item], test: [Item], classNames: [String]
        if entries.contains("train") && isDirectory(trainFolder) {
            guard let val = validationNames.first(where: { entries.contains($0) && isDirectory(root.appendingPathComponent($0)) }) else {
                throw DataError("\(directory) has train/ but no val/ (or validation/, test/) folder: add one, or point --data at \(trainFolder) with --val-fraction 0.1")
            }
            classNames = try classFolders(trainFolder)
            train = try items(trainFolder, classNames: classNames, allowEmpty: false)
            let valFolder = root.appendingPathComponent(val)
            if let flatValidation, !hasClassFolders(valFolder) {
                test = try flatValidation(valFolder, classNames)
            } else {
                for name in try classFolders(valFolder) where !classNames.contains(name) {
                    throw DataError("\(valFolder)/\(name) is a class that \(trainFolder) does not have: rename or remove it")
                }
                test = try items(valFolder, classNames: classNames, allowEmpty: true)
            }
        } else {
            guard let fraction = valFraction else {
                throw DataError("\(directory) is a folder of classes with no train/ and val/ split: pass --val-fraction 0.1 to hold out a seeded tenth of each class for testing")
            }
            classNames = try classFolders(directory)
            (train, test) = holdOut(try items(directory, classNames: classNames, allowEmpty: false), fraction: fraction,
                                    classes: classNames.count, seed: seed)
        }
        guard !test.isEmpty else { throw DataError("\(directory) leaves no images for testing: add images to val/ or raise --val-fraction") }
        return (train, test, classNames)
    }

    /// The sorted visible sub-folders of `directory`; at least one.
    static func classFolders(_ directory: String) throws -> [String] {
        let names = try DataFormat.listing(directory).filter { isDirectory((directory as NSString).appendingPathComponent($0)) }
        guard !names.isEmpty else { throw DataError("\(directory) has no class folders: lay it out as \(directory)/<class>/<image files>") }
        guard names.count <= ReadLimits.classes else {
            throw DataError("\(directory) has \(names.count) class folders, more than the \(ReadLimits.classes) this program trains; is --data the right folder?")
        }
        return names
    }

    /// The files of every class, interleaved (first file of each class, then the second, ...)
    /// so that `--train-limit` keeps every class.
    static func items(_ directory: String, classNames: [String], allowEmpty: Bool) throws -> [Item] {
        var perClass: [[Item]] = []
        for (label, name) in classNames.enumerated() {
            let folder = (directory as NSString).appendingPathComponent(name)
            let files = isDirectory(folder) ? try DataFormat.listing(folder).filter { !isDirectory((folder as NSString).appendingPathComponent($0)) } : []
            if files.isEmpty && !allowEmpty {
                throw DataError("\(folder) has no image files: every class needs images; add some or remove the folder")
            }
            perClass.append(files.map { Item(path: (folder as NSString).appendingPathComponent($0), label: Int32(label)) })
        }
        return interleave(perClass.flatMap { $0 }, classes: classNames.count)
    }

    /// A seeded split: `fraction` of each class's files (at least one, when it has two) for testing.
    static func holdOut(_ all: [Item], fraction: Double, classes: Int, seed: UInt64) -> (train: [Item], test: [Item]) {
        var train: [Item] = [], test: [Item] = []
        for label in 0..<classes {
            let files = all.filter { $0.label == label }
            var random = KeyedRandom(seed, 0x5641_4C53, UInt64(label))  // "VALS"
            let order = random.permutation(files.count)
            let held = files.count < 2 ? 0 : min(files.count - 1, max(1, Int((fraction * Double(files.count)).rounded())))
            let heldSet = Set(order.prefix(held))
            for (i, item) in files.enumerated() {
                if heldSet.contains(i) { test.append(item) } else { train.append(item) }
            }
        }
        return (interleave(train, classes: classes), interleave(test, classes: classes))
    }

    /// The first item of each class, then the second, and so on.
    private static func interleave(_ items: [Item], classes: Int) -> [Item] {
        let perClass = (0..<classes).map { label in items.filter { $0.label == label } }
        var result: [Item] = []
        for index in 0..<(perClass.map(\.count).max() ?? 0) {
            for files in perClass where index < files.count { result.append(files[index]) }
        }
        return result
    }

    /// Decodes `items` on every core into `size x size` squares. A bad file stops the load with
    /// its name, or with `skipBadImages` is left out and added to `skipped`.
    static func decode(_ items: [Item], options: DataLoadOptions, skipped: inout [String]) throws -> LabeledImages {
        let size = options.imageSize, channels = options.channels
        let stride = size * size * channels
        guard let total = ReadLimits.product([items.count, stride], limit: Int.max) else {
            throw DataError("\(items.count) images of \(size) x \(size) x \(channels) bytes do not fit in memory; lower --image-size or --train-limit")
        }
        var pixels = [UInt8](repeating: 0, count: total)
        var failures = [String?](repeating: nil, count: items.count)
        pixels.withUnsafeMutableBufferPointer { out in
            failures.withUnsafeMutableBufferPointer { failed in
                let squares = DisjointBlocks(out, stride: stride), why = DisjointBlocks(failed)
                DispatchQueue.concurrentPerform(iterations: items.count) { i in
                    do {
                        let image = try ImageFile.decode(path: items[i].path, channels: channels)
                        let square = Resample.shorterSideThenCentreCrop(image, size: size)
                        squares.block(i).baseAddress!.update(from: square, count: stride)
                    } catch {
                        why.block(i)[0] = "\(error)"
                    }
                }
            }
        }
        let bad = failures.indices.filter { failures[$0] != nil }
        if let first = bad.first, !options.skipBadImages {
            throw DataError("\(failures[first]!) (pass --skip-bad-images to leave such files out)")
        }
        skipped += bad.map { failures[$0]! }
        let keep = items.indices.filter { failures[$0] == nil }
        guard !keep.isEmpty || items.isEmpty else { throw DataError("none of the \(items.count) images could be read; check --data") }
        if bad.isEmpty {
            return LabeledImages(height: size, width: size, channels: channels, pixels: pixels, labels: items.map(\.label))
        }
        var kept = [UInt8]()
        kept.reserveCapacity(keep.count * stride)
        for i in keep { kept += pixels[(i * stride)..<((i + 1) * stride)] }
        return LabeledImages(height: size, width: size, channels: channels, pixels: kept, labels: keep.map { items[$0].label })
    }
}
