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
        try self.init(text: try Self.text(file), file: file, synsets: try synsets.map { (try Self.text($0), $0) })
    }

    /// Reads label text as `init(file:synsets:)` reads files; `file` and the synsets' path name them in errors.
    public init(text: String, file: String, synsets: (text: String, path: String)?) throws {
        source = file
        let lines = Self.lines(text)
        if lines.first?.text.contains(",") == true {
            synsetByImage = try Self.csv(lines, file: file)
        } else {
            guard let synsets else {
                throw DataError("\(file) numbers classes by the devkit's ILSVRC2012_ID: pass --synsets FILE, whose line k starts with the synset of ID k (from the devkit's data/meta.mat)")
            }
            synsetByImage = try Self.groundTruth(lines, file: file, synsets: try Self.synsetList(synsets.text, file: synsets.path), synsetFile: synsets.path)
        }
    }

    /// A label file's text, after checking that it is a regular file of a label file's size.
    static func text(_ path: String) throws -> String {
        let data = try ReadLimits.contents(of: path, limit: 256 << 20, what: "label file")
        return String(decoding: data, as: UTF8.self)
    }

    /// The non-blank lines, trimmed, each with its line number (from 1).
    static func lines(_ text: String) -> [(number: Int, text: String)] {
        text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().compactMap { index, line in
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : (index + 1, trimmed)
        }
    }

    /// The synset of each line of a `--synsets` file (its first word), each named once.
    static func synsetList(_ text: String, file: String) throws -> [String] {
        var synsets: [String] = [], firstLine: [String: Int] = [:]
        for (number, line) in lines(text) {
            let synset = String(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).first ?? "")
            guard isSynset(synset) else {
                throw DataError("\(file) line \(number) starts with \(synset.prefix(40).debugDescription), not a synset (nXXXXXXXX): it should give one synset per line, in the devkit's ILSVRC2012_ID order")
            }
            if let earlier = firstLine[synset] {
                throw DataError("\(file) names \(synset) on line \(earlier) and again on line \(number): each synset has one ILSVRC2012_ID, so each line must name another; write the file again from the devkit's data/meta.mat")
            }
            firstLine[synset] = number
            synsets.append(synset)
        }
        guard !synsets.isEmpty else { throw DataError("\(file) names no synset: it should give one synset (nXXXXXXXX) per line, in the devkit's ILSVRC2012_ID order") }
        return synsets
    }

    static func csv(_ lines: [(number: Int, text: String)], file: String) throws -> [String: String] {
        var result: [String: String] = [:], firstLine: [String: Int] = [:]
        for (index, (number, line)) in lines.enumerated() where !(index == 0 && line.hasPrefix("ImageId")) {
            let fields = line.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2, !fields[0].isEmpty, let synset = fields[1].split(separator: " ").first, isSynset(String(synset)) else {
                throw DataError("\(file) line \(number) is not `ImageId,PredictionString` with the synset first: \(line.prefix(80))")
            }
            if let earlier = firstLine[fields[0]] {
                let same = result[fields[0]] == String(synset) ? "the same class twice" : "\(result[fields[0]]!) there, \(synset) here"
                throw DataError("\(file) lists \(fields[0]) on line \(earlier) and again on line \(number) (\(same)): each image must be listed once; is it two files joined?")
            }
            firstLine[fields[0]] = number
            result[fields[0]] = String(synset)
        }
        return result
    }

    static func groundTruth(_ lines: [(number: Int, text: String)], file: String, synsets: [String], synsetFile: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for (index, (number, line)) in lines.enumerated() {
            guard let id = Int(line), id >= 1, id <= synsets.count else {
                throw DataError("\(file) line \(number) is \(line.prefix(40)), not an ILSVRC2012_ID between 1 and \(synsets.count) (the lines of \(synsetFile))")
            }
            guard index + 1 == number else {
                throw DataError("\(file) has a blank line before line \(number): line k labels ILSVRC2012_val_k, so no line may be left out")
            }
            result[String(format: "ILSVRC2012_val_%08d", number)] = synsets[id - 1]
        }
        return result
    }

    /// The synset of an image (its file name without the extension), if the file labels it.
    public func synset(of image: String) -> String? { synsetByImage[image] }

    static func isSynset(_ name: String) -> Bool {
        name.count == 9 && name.first == "n" && name.dropFirst().allSatisfy(\.isNumber)
    }

    /// The image files of the flat `folder`, labelled by their synset's place in `classNames`.
    func items(_ folder: String, classNames: [String]) throws -> [ImageFolder.Item] {
        let classIndex = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, Int32($0)) })
        var fileByStem: [String: String] = [:]
        return try DataFormat.listing(folder).map { name in
            let stem = (name as NSString).deletingPathExtension
            if let other = fileByStem[stem] {
                throw DataError("\(folder) holds both \(other) and \(name), which \(source) labels as one image (\(stem)): remove one of them")
            }
            fileByStem[stem] = name
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
