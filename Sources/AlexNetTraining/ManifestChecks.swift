import AlexNetCore
import AlexNetData
import Foundation

/// Reading a checkpoint's manifest.json without trusting it: its own checksum, then every
/// value against the same ranges the command line applies (SettingRules) and the readers'
/// limits, so that a damaged or edited manifest ends in one line naming the file and the key.
///
/// The checksum: `"checksum": "crc32:xxxxxxxx"` is the CRC-32 of the manifest's canonical
/// encoding, JSON with sorted keys and no whitespace, without the `checksum` key. The reader
/// decodes the file, encodes it again that way and compares, so the check covers every value
/// the program uses, whatever the file's layout. Manifests written before the checksum
/// existed have none; they are read with a note, their values still range-checked.
extension CheckpointManifest {
    /// The encoding the checksum covers.
    func canonicalEncoding() throws -> Data {
        var unsealed = self
        unsealed.checksum = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(unsealed)
    }

    /// `crc32:` and eight hex digits.
    func computedChecksum() throws -> String {
        String(format: "crc32:%08x", Checkpoint.crc(try canonicalEncoding()))
    }

    /// The manifest with its checksum set, as `save` writes it.
    public func sealed() throws -> CheckpointManifest {
        var manifest = self
        manifest.checksum = try computedChecksum()
        return manifest
    }

    /// The settings the run was trained with, as `TrainingOptions`: for the range checks and for
    /// `ResumeCheck`, which compares them with a command line's. Settings a manifest does not
    /// keep have their defaults.
    var trainingOptions: TrainingOptions {
        var o = TrainingOptions()
        (o.preset, o.model) = (Preset(rawValue: preset) ?? o.preset, ModelKind(rawValue: model) ?? o.model)
        (o.seed, o.initialization) = (seed, initialization.flatMap(Initialization.init(rawValue:)))
        (o.epochs, o.batchSize, o.momentum, o.weightDecay) = (epochs, batchSize, momentum, weightDecay)
        (o.learningRate, o.schedule) = (schedule.rate, ScheduleKind(rawValue: schedule.kind) ?? o.schedule)
        (o.scheduleFactor, o.schedulePatience) = (schedule.factor, schedule.patience)
        (o.scheduleMinimum, o.scheduleStepEpochs) = (schedule.minimum, schedule.stepEpochs)
        (o.trainLimit, o.testLimit) = (trainLimit, testLimit)
        o.data = dataSettings ?? DataSettings()
        if let dataDirectory { o.dataDirectory = dataDirectory }
        return o
    }

    /// Every value in range, or an error naming `path` and the key.
    func checkValues(path: String) throws {
        func refuse(_ why: String) -> TrainingError {
            TrainingError("\(path): \(why); the file is damaged or was edited: use another checkpoint")
        }
        guard let kind = ModelKind(rawValue: model) else { throw refuse("model \"\(model)\" is not one of \(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard Preset(rawValue: preset) != nil else { throw refuse("preset \"\(preset)\" is not one of \(Preset.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard towers == kind.towers else { throw refuse("towers is \(towers), but the \(model) model has \(kind.towers)") }
        guard (1...ReadLimits.classes).contains(classes) else { throw refuse("classes is \(classes), outside 1...\(ReadLimits.classes)") }
        if let names = classNames, names.count != classes { throw refuse("classNames has \(names.count) names for \(classes) classes") }
        if let problem = SettingRules.problem(inManifest: trainingOptions) { throw refuse("\(problem.manifestKey) \(problem.message)") }
        guard ScheduleKind(rawValue: schedule.kind) != nil else { throw refuse("schedule.kind \"\(schedule.kind)\" is not a schedule") }
        guard schedule.epochsWithoutImprovement >= 0, schedule.bestError.map({ $0.isFinite && $0 >= 0 }) ?? true else {
            throw refuse("the schedule's state (bestError, epochsWithoutImprovement) is out of range")
        }
        try checkPosition(refuse)
        try checkInputs(refuse)
        try checkFiles(refuse)
    }

    /// Where training stood: a step count, and a position inside the epoch's data order that
    /// the data (when its size is recorded) can reach.
    private func checkPosition(_ refuse: (String) -> TrainingError) throws {
        guard step >= 0 else { throw refuse("step is \(step), below 0") }
        guard epoch >= 1, epoch - 1 <= epochs else { throw refuse("epoch is \(epoch), outside 1 to epochs + 1 (epochs is \(epochs))") }
        guard history.count <= epoch else { throw refuse("history has \(history.count) epochs, more than epoch \(epoch)") }
        if let trainImages, trainImages < 1 { throw refuse("trainImages is \(trainImages), below 1") }
        // A step takes min(batch, images) images, as in the training loop.
        let stepsPerEpoch = trainImages.map { images in
            let batch = min(batchSize, images)
            return images / batch + (images % batch == 0 ? 0 : 1)
        } ?? step
        guard stepInEpoch >= 0, stepInEpoch <= stepsPerEpoch, stepInEpoch <= step else {
            throw refuse("stepInEpoch is \(stepInEpoch), outside 0...\(min(stepsPerEpoch, step)) (the steps of an epoch so far)")
        }
    }

    /// How inputs were prepared: finite normalisation, stored images of a size the readers accept.
    private func checkInputs(_ refuse: (String) -> TrainingError) throws {
        if (pixelMean == nil) != (pixelStd == nil) { throw refuse("pixelMean and pixelStd must be given together") }
        if let pixelMean, let pixelStd, !(pixelMean.isFinite && pixelStd.isFinite && pixelStd > 0) {
            throw refuse("pixelMean \(pixelMean) / pixelStd \(pixelStd) are not a finite mean and a positive deviation")
        }
        if let layout = dataLayout {
            guard (1...ReadLimits.storedImageSide).contains(layout.imageSize), layout.channels == 1 || layout.channels == 3 else {
                throw refuse("dataLayout is \(layout.imageSize) pixels x \(layout.channels) channels, outside 1...\(ReadLimits.storedImageSide) x 1 or 3")
            }
        }
    }

    /// The files: plain names, sizes within the limit, and tower files for every tower.
    private func checkFiles(_ refuse: (String) -> TrainingError) throws {
        var names = Set<String>()
        for file in files {
            guard !file.name.isEmpty, !file.name.contains("/"), file.name != ".", file.name != "..", !file.name.contains("\0") else {
                throw refuse("files names \"\(file.name)\", not a file of the checkpoint's folder")
            }
            guard names.insert(file.name).inserted else { throw refuse("files lists \(file.name) twice") }
            guard (0...ReadLimits.checkpointFileBytes).contains(file.bytes) else {
                throw refuse("files gives \(file.name) \(file.bytes) bytes, outside 0...\(ReadLimits.checkpointFileBytes)")
            }
        }
        guard towerFiles != nil else {
            let expected = (0..<towers).map(Checkpoint.towerFileName).joined(separator: ", ")
            throw refuse("files lists \(files.filter { $0.name.hasPrefix("tower") }.map(\.name)) where the weights of \(towers) tower(s) need \(expected) (or tower0 holding all)")
        }
    }

    /// The tower files in tower order, each with the first tower it holds and how many: every
    /// rank of the writer wrote one, all holding the same number of towers. Nil when the list
    /// does not cover the towers exactly.
    var towerFiles: [(file: File, firstTower: Int, towersInFile: Int)]? {
        let listed = files.filter { $0.name.hasPrefix("tower") }
        guard !listed.isEmpty, towers % listed.count == 0 else { return nil }
        let perFile = towers / listed.count
        let expected = (0..<listed.count).map { Checkpoint.towerFileName($0 * perFile) }
        guard Set(listed.map(\.name)) == Set(expected) else { return nil }
        return expected.enumerated().map { index, name in (listed.first { $0.name == name }!, index * perFile, perFile) }
    }
}

extension Checkpoint {
    /// Decodes a manifest's bytes and checks its format, its checksum and its values;
    /// `path` names it in errors. A manifest without a checksum (written before it existed)
    /// is accepted; `Restore` says so.
    static func decodeManifest(_ data: Data, path: String) throws -> CheckpointManifest {
        let manifest: CheckpointManifest
        do { manifest = try JSONDecoder().decode(CheckpointManifest.self, from: data) } catch {
            throw TrainingError("\(path) is damaged (not a checkpoint manifest: \(JSONDecodingProblem.describe(error))); use another checkpoint")
        }
        guard manifest.format == "alexnet-split checkpoint", manifest.version == 1 else {
            throw TrainingError("\(path) is format \(manifest.format) version \(manifest.version); this build reads version 1")
        }
        if let checksum = manifest.checksum {
            let computed: String
            do { computed = try manifest.computedChecksum() } catch { throw TrainingError("\(path) holds values that cannot be encoded again (\(error)); use another checkpoint") }
            guard checksum == computed else {
                throw TrainingError("\(path) does not match its own checksum (\(checksum), its contents give \(computed)): it was changed or damaged; use another checkpoint")
            }
        }
        try manifest.checkValues(path: path)
        return manifest
    }
}
