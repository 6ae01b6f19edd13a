import Foundation

/// Labels for ILSVRC-2012's validation folder, which holds its 50,000 JPEGs in one flat folder
/// (`ILSVRC2012_val_00000001.JPEG` ...). Two kinds of label file are read:
///
/// - the devkit's `ILSVRC2012_validation_ground_truth.txt`: one ILSVRC2012_ID (1...1000) per
///   line, line k for `ILSVRC2012_val_k`. The IDs are the devkit's own numbering (its
///   `data/meta.mat`), so it needs `synsets`: a text file whose line k starts with the synset
///   (WordNet id, nXXXXXXXX) of ILSVRC2012_ID k;
/// - a CSV of `ImageId,PredictionString` whose PredictionString starts with the synset, such as
///   Kaggle's `LOC_val_solution.csv`.
///
/// Either way the label is the synset's place among the sorted training folders.
public struct ValidationLabels: Sendable {
    /// Synset by image name (the file name without its extension).
    let synsetByImage: [String: String]
    let source: String

    public init(file: String, synsets: String?) throws {
        source = file
        let text = try Self.text(file)
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if lines.first?.contains(",") == true {
            synsetByImage = try Self.csv(lines, file: file)
        } else {
            guard let synsets else {
                throw DataError("\(file) numbers classes by the devkit's ILSVRC2012_ID: pass --synsets FILE, whose line k starts with the synset of ID k (from the devkit's data/meta.mat)")
            }
            synsetByImage = try Self.groundTruth(lines, file: file, synsets: try Self.text(synsets).split(whereSeparator: \.isNewline)
                .compactMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).first.map(String.init) }, synsetFile: synsets)
        }
    }

    static func text(_ path: String) throws -> String {
        guard let size = ShardFiles.size(path) else { throw DataError("cannot read \(path): no such file") }
        guard size <= 256 << 20 else { throw DataError("\(path) is \(size) bytes, too large for a label file; check the path") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError("cannot read \(path): check its permissions") }
        return String(decoding: data, as: UTF8.self)
    }

    static func csv(_ lines: [String], file: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for (number, line) in lines.enumerated() where !(number == 0 && line.hasPrefix("ImageId")) {
            let fields = line.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2, let synset = fields[1].split(separator: " ").first, isSynset(String(synset)) else {
                throw DataError("\(file) line \(number + 1) is not `ImageId,PredictionString` with the synset first: \(line.prefix(80))")
            }
            result[fields[0]] = String(synset)
        }
        return result
    }

    static func groundTruth(_ lines: [String], file: String, synsets: [String], synsetFile: String) throws -> [String: String] {
        guard !synsets.isEmpty, synsets.allSatisfy(isSynset) else {
            throw DataError("\(synsetFile) should give one synset (nXXXXXXXX) per line, in the devkit's ILSVRC2012_ID order")
        }
        var result: [String: String] = [:]
        for (number, line) in lines.enumerated() {
            guard let id = Int(line), id >= 1, id <= synsets.count else {
                throw DataError("\(file) line \(number + 1) is \(line.prefix(40)), not an ILSVRC2012_ID between 1 and \(synsets.count) (the lines of \(synsetFile))")
            }
            result[String(format: "ILSVRC2012_val_%08d", number + 1)] = synsets[id - 1]
        }
        return result
    }

    static func isSynset(_ name: String) -> Bool {
        name.count == 9 && name.first == "n" && name.dropFirst().allSatisfy(\.isNumber)
    }

    /// The image files of the flat `folder`, labelled by their synset's place in `classNames`.
    func items(_ folder: String, classNames: [String]) throws -> [ImageFolder.Item] {
        let classIndex = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, Int32($0)) })
        return try DataFormat.listing(folder).map { name in
            let stem = (name as NSString).deletingPathExtension
            guard let synset = synsetByImage[stem] else {
                throw DataError("\(folder)/\(name) has no label in \(source): check that --val-labels belongs to this validation folder")
            }
            guard let label = classIndex[synset] else {
                throw DataError("\(folder)/\(name) is labelled \(synset) in \(source), a synset with no folder in train/")
            }
            return ImageFolder.Item(path: (folder as NSString).appendingPathComponent(name), label: label)
        }
    }
}
