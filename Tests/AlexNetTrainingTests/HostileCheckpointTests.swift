import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTools
import AlexNetTraining
import Foundation
import XCTest

/// One test per class of hostile checkpoint: a manifest whose values the command line would
/// refuse, one edited under its checksum, tower files swapped or left out, non-finite weights,
/// damaged safetensors and statistics files. Each ends in one line naming the file.
final class HostileCheckpointTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = NSTemporaryDirectory() + "hostile-checkpoints-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: base)
        StopRequest.clear()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// The checkpoint of one short epoch of the tiny split model (4 steps).
    func checkpoint() throws -> String {
        var o = TrainingOptions()
        o.preset = .tiny
        o.epochs = 1
        o.batchSize = 16
        o.trainLimit = 64
        o.testLimit = 16
        o.logEvery = 1000
        o.runDirectory = "\(base)/run"
        XCTAssertEqual(Trainer.runSimulated(o), 0)
        let path = String(format: "\(base)/run/checkpoints/step-%07d", try XCTUnwrap(Checkpoint.steps(run: "\(base)/run").last))
        XCTAssertNoThrow(try Checkpoint.validate(path))
        return path
    }

    func manifestObject(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(path)/manifest.json"))) as? [String: Any])
    }

    /// Writes `object` as the manifest, sealed with a fresh checksum when it still decodes (so
    /// that what is tested is the value check, not the checksum).
    func writeManifest(_ object: [String: Any], to path: String) throws {
        var data = try JSONSerialization.data(withJSONObject: object)
        if let manifest = try? JSONDecoder().decode(CheckpointManifest.self, from: data) { data = try JSONEncoder().encode(manifest.sealed()) }
        try data.write(to: URL(fileURLWithPath: "\(path)/manifest.json"))
    }

    func expectRefused(_ path: String, _ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.validate(path), file: file, line: line) { error in
            for word in words { XCTAssertTrue("\(error)".contains(word), "\(error) should mention \(word)", file: file, line: line) }
            XCTAssertFalse("\(error)".contains("\n"), file: file, line: line)
        }
    }

    func testManifestValuesTheCommandLineRefusesAreRefusedInTheFile() throws {
        let path = try checkpoint()
        let original = try manifestObject(path)
        let cases: [(key: String, value: Any, words: [String])] = [
            ("batchSize", 0, ["batchSize must be at least 1 (got 0)"]),
            ("batchSize", -128, ["batchSize must be at least 1"]),
            ("step", -1, ["step is -1"]),
            ("stepInEpoch", 1 << 62, ["stepInEpoch is 4611686018427387904"]),
            ("stepInEpoch", -5, ["stepInEpoch is -5"]),
            ("epoch", Int.max, ["epoch is \(Int.max)"]),
            ("epochs", 0, ["epochs must be at least 1"]),
            ("trainLimit", -3, ["trainLimit must be at least 1 (got -3)"]),
            ("testLimit", 0, ["testLimit must be at least 1"]),
            ("trainImages", 0, ["trainImages is 0"]),
            ("preset", "huge", ["preset \"huge\""]),
            ("model", "three-towers", ["model \"three-towers\""]),
            ("classes", 0, ["classes is 0"]),
            ("classes", Int.max, ["classes is \(Int.max)"]),
            ("momentum", 1.5, ["momentum must be in [0, 1)"]),
            ("weightDecay", -1, ["weightDecay must be 0 or more"]),
            ("pixelStd", 0, ["pixelStd 0.0"]),
            ("batchSize", "many", ["batchSize", "not a checkpoint manifest"]),
        ]
        for c in cases {
            var object = original
            object[c.key] = c.value
            try writeManifest(object, to: path)
            expectRefused(path, ["manifest.json"] + c.words)
        }
        // JSON has no NaN: a rate past Float's range is the nearest a file gets to a non-finite
        // one, and Foundation's decoder refuses it (calling it "not valid JSON").
        for (rate, words) in [(-1.0, "schedule.rate must be a positive number (got -1.0)"), (1e39, "manifest.json is damaged")] {
            var schedule = try XCTUnwrap(original["schedule"] as? [String: Any])
            schedule["rate"] = rate
            var object = original
            object["schedule"] = schedule
            try writeManifest(object, to: path)
            expectRefused(path, ["manifest.json", words])
        }
    }

    func testTheCommandLineAndTheManifestShareOneRule() {
        var options = TrainingOptions()
        options.batchSize = 0
        let problem = SettingRules.problem(in: options)
        XCTAssertEqual(problem?.forCommandLine, "--batch-size must be at least 1 (got 0)")
        XCTAssertEqual(problem?.manifestKey, "batchSize")
        options.batchSize = 1
        options.data.imageSize = 100_000
        XCTAssertEqual(SettingRules.problem(in: options)?.flag, "--image-size")
        options.data.imageSize = 256
        XCTAssertNil(SettingRules.problem(in: options))
    }

    func testManifestEditedUnderItsChecksumIsRefused() throws {
        let path = try checkpoint()
        let file = "\(path)/manifest.json"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.contains("\"checksum\" : \"crc32:"), "save seals the manifest")
        let edited = text.replacingOccurrences(of: "\"batchSize\" : 16", with: "\"batchSize\" : 32")
        XCTAssertNotEqual(edited, text)
        try edited.write(toFile: file, atomically: true, encoding: .utf8)
        expectRefused(path, [file, "does not match its own checksum"])
    }

    func testManifestWithoutChecksumIsReadAndStillRangeChecked() throws {
        let path = try checkpoint()
        var object = try manifestObject(path)
        object["checksum"] = nil
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: "\(path)/manifest.json"))
        XCTAssertNil(try Checkpoint.validate(path).checksum)
        object["batchSize"] = 0
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: "\(path)/manifest.json"))
        expectRefused(path, ["batchSize must be at least 1"])
    }

    func testManifestAboveTheSizeLimitIsRefusedBeforeReading() throws {
        let path = try checkpoint()
        XCTAssertEqual(truncate("\(path)/manifest.json", off_t(ReadLimits.manifestBytes + 1)), 0)
        expectRefused(path, ["manifest.json", "more than any checkpoint manifest"])
    }

    func testSwappedTowerFilesAreRefusedByValidateLoadAndExport() throws {
        let path = try checkpoint()
        let manager = FileManager.default
        try manager.moveItem(atPath: "\(path)/tower0.safetensors", toPath: "\(path)/swap")
        try manager.moveItem(atPath: "\(path)/tower1.safetensors", toPath: "\(path)/tower0.safetensors")
        try manager.moveItem(atPath: "\(path)/swap", toPath: "\(path)/tower1.safetensors")
        // The manifest's sizes and CRCs swapped too, so that only the files' metadata can tell.
        var object = try manifestObject(path)
        var files = try XCTUnwrap(object["files"] as? [[String: Any]])
        let towers = files.indices.filter { (files[$0]["name"] as? String)?.hasPrefix("tower") == true }
        (files[towers[0]]["name"], files[towers[1]]["name"]) = (files[towers[1]]["name"], files[towers[0]]["name"])
        object["files"] = files
        try writeManifest(object, to: path)
        expectRefused(path, ["tower1.safetensors says tower \"0\" where its manifest needs \"1\"", "swapped"])
        XCTAssertThrowsError(try Export.model(checkpoint: path)) { XCTAssertTrue("\($0)".contains("swapped"), "\($0)") }
    }

    func testFilesListWithoutEveryTowerIsRefused() throws {
        let path = try checkpoint()
        var object = try manifestObject(path)
        let files = try XCTUnwrap(object["files"] as? [[String: Any]])
        object["files"] = []
        try writeManifest(object, to: path)
        expectRefused(path, ["files lists []", "tower0.safetensors, tower1.safetensors"])
        // tower0 alone would have to hold both towers, and says it holds one.
        object["files"] = files.filter { ($0["name"] as? String) != "tower1.safetensors" }
        try writeManifest(object, to: path)
        expectRefused(path, ["tower0.safetensors says towers_in_file \"1\" where its manifest needs \"2\""])
        object["files"] = files + [["name": "../../etc/passwd", "bytes": 1, "crc32": 0]]
        try writeManifest(object, to: path)
        expectRefused(path, ["\"../../etc/passwd\", not a file of the checkpoint's folder"])
    }

    func testNonFiniteWeightsAreNeverEvaluatedOrExported() throws {
        let path = try checkpoint()
        let file = "\(path)/tower1.safetensors"
        let decoded = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: file)), source: file)
        var tensors = decoded.tensors
        tensors[0].values[0] = .nan
        let bytes = SafeTensors.encode(tensors, metadata: decoded.metadata)
        try bytes.write(to: URL(fileURLWithPath: file))
        // Sizes and CRCs that match: a checksum alone would let it through.
        var object = try manifestObject(path)
        object["files"] = try XCTUnwrap(object["files"] as? [[String: Any]]).map { entry in
            guard entry["name"] as? String == "tower1.safetensors" else { return entry }
            return ["name": "tower1.safetensors", "bytes": bytes.count, "crc32": Checkpoint.crc(bytes)]
        }
        try writeManifest(object, to: path)
        expectRefused(path, [file, "non-finite value (nan) in \(tensors[0].name)"])
        XCTAssertThrowsError(try Export.model(checkpoint: path)) { XCTAssertTrue("\($0)".contains("non-finite"), "\($0)") }
        let manifest = try JSONDecoder().decode(CheckpointManifest.self, from: Data(contentsOf: URL(fileURLWithPath: "\(path)/manifest.json")))
        let plan = try NetworkPlan(spec: Preset.tiny.spec(classes: 10), model: .split)
        let group = InProcessGroup(size: 2)
        let tower = try Network(plan: plan, communicator: group.communicator(rank: 1), maxBatch: 1, seed: 1)
        XCTAssertThrowsError(try Checkpoint.load(path, manifest: manifest, into: tower)) { XCTAssertTrue("\($0)".contains("non-finite"), "\($0)") }
    }

    func testSafeTensorsLengthsShapesOffsetsAndTypesAreChecked() throws {
        func file(header: String, length: UInt64? = nil, body: Int = 16) -> Data {
            var data = Data()
            var size = (length ?? UInt64(header.utf8.count)).littleEndian
            withUnsafeBytes(of: &size) { data.append(contentsOf: $0) }
            return data + Data(header.utf8) + Data(count: body)
        }
        let cases: [(Data, String)] = [
            (file(header: "{}", length: UInt64(Int.max)), "header length 9223372036854775807 is outside"),
            (file(header: "{}", length: UInt64.max), "header length 18446744073709551615"),
            (Data([1, 2, 3]), "too short"),
            (file(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#), "shape [4611686018427387904, 4]"),
            (file(header: #"{"w":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}}"#), "shape [-2, -2]"),
            (file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[9223372036854775800,9223372036854775807]}}"#), "outside the 16 bytes"),
            (file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,0]}}"#), "data_offsets [8, 0]"),
            (file(header: #"{"w":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}"#), "is F16; this program reads F32 only"),
            (file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#), "16 bytes for shape [2]"),
            (file(header: #"{"__metadata__":{"a":1}}"#), "__metadata__ is not a map of strings"),
            (file(header: "[1, 2]"), "not a JSON object"),
        ]
        for (data, words) in cases {
            XCTAssertThrowsError(try SafeTensors.decode(data, source: "t.safetensors")) {
                XCTAssertTrue("\($0)".contains("t.safetensors") && "\($0)".contains(words), "\($0) should mention \(words)")
            }
        }
        let good = file(header: #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#)
        XCTAssertEqual(try SafeTensors.decode(good, source: "t").tensors.first?.shape, [2, 2])
    }

    func testStatisticsFileMustDescribeTheStoredImages() throws {
        let photo = PhotoStatistics(size: 2, channels: 3, meanKind: .pixel, mean: [Float](repeating: 1, count: 12), scale: 2,
                                    eigenvalues: [0.3, 0.2, 0.1], eigenvectors: [1, 0, 0, 0, 1, 0, 0, 0, 1])
        let layout = DataLayout(format: .folder, preprocessing: .paper, imageSize: 2, channels: 3)
        XCTAssertEqual(try InputStatistics.decode(InputStatistics(photo: photo).encoded()!, source: "s", layout: layout), photo)
        var wrong = layout
        wrong.imageSize = 256
        XCTAssertThrowsError(try InputStatistics.decode(InputStatistics(photo: photo).encoded()!, source: "s.safetensors", layout: wrong)) {
            XCTAssertTrue("\($0)".contains("s.safetensors") && "\($0)".contains("the images were 3 x 256 x 256"), "\($0)")
        }
        for damage in [{ (p: inout PhotoStatistics) in p.scale = 0 }, { $0.eigenvalues[1] = .infinity }, { $0.eigenvectors = [1] }] {
            var bad = photo
            damage(&bad)
            XCTAssertThrowsError(try InputStatistics.decode(InputStatistics(photo: bad).encoded()!, source: "s", layout: layout))
        }
    }
}
