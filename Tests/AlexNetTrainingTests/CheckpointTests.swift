import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation
import XCTest

final class CheckpointTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = NSTemporaryDirectory() + "checkpoints-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: base)
        StopRequest.clear()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// Tiny split model, 10 steps per epoch.
    func options(_ run: String) -> TrainingOptions {
        var o = TrainingOptions()
        o.preset = .tiny
        o.epochs = 2
        o.batchSize = 16
        o.trainLimit = 160
        o.testLimit = 32
        o.logEvery = 1000
        o.checkpointEvery = 3
        o.runDirectory = "\(base)/\(run)"
        o.dumpWeightsPrefix = "\(base)/\(run)-weights"
        return o
    }

    func weights(_ run: String) throws -> [Data] {
        try (0..<2).map { try Data(contentsOf: URL(fileURLWithPath: "\(base)/\(run)-weights-tower\($0).safetensors")) }
    }

    func testStoppedMidEpochThenResumedEndsBitIdentical() throws {
        XCTAssertEqual(Trainer.runSimulated(options("whole")), 0)
        var stopped = options("stopped")
        stopped.maxSteps = 7  // dies in mid-epoch 1; its newest checkpoint is at step 6
        stopped.dumpWeightsPrefix = nil
        XCTAssertEqual(Trainer.runSimulated(stopped), 0)
        let newest = try Checkpoint.newestValid(run: "\(base)/stopped")
        XCTAssertEqual(newest.manifest.step, 6)
        XCTAssertEqual(newest.manifest.epoch, 1)
        XCTAssertEqual(newest.manifest.stepInEpoch, 6)

        var resumed = options("stopped")
        resumed.resume = "\(base)/stopped"
        resumed.epochsGiven = false
        // The data settings come back from the checkpoint: a resumed run must see the same images.
        resumed.trainLimit = nil
        resumed.testLimit = nil
        resumed.dumpWeightsPrefix = "\(base)/resumed-weights"
        XCTAssertEqual(Trainer.runSimulated(resumed), 0)
        XCTAssertEqual(try weights("whole"), try weights("resumed"), "resumed weights must equal the uninterrupted run's, bit for bit")
        let final = try Checkpoint.newestValid(run: "\(base)/stopped").manifest
        XCTAssertEqual(final.step, 20)
        XCTAssertEqual(final.history.count, 2)
        XCTAssertEqual(Checkpoint.steps(run: "\(base)/whole").count, 3, "only the newest 3 are kept")
    }

    /// A run on Winograd, stopped and resumed without naming the algorithm, takes it from the
    /// checkpoint and ends bit-identical to the uninterrupted run.
    func testResumeKeepsTheRecordedAlgorithmsAndEndsBitIdentical() throws {
        var whole = options("whole")
        whole.convolutionAlgorithm = .winograd
        XCTAssertEqual(Trainer.runSimulated(whole), 0)
        var stopped = options("stopped")
        (stopped.maxSteps, stopped.dumpWeightsPrefix, stopped.convolutionAlgorithm) = (7, nil, .winograd)
        XCTAssertEqual(Trainer.runSimulated(stopped), 0)
        let recorded = try XCTUnwrap(Checkpoint.newestValid(run: "\(base)/stopped").manifest.convolutionAlgorithms)
        XCTAssertEqual(recorded.layers.map(\.algorithms.forward), [.gemm, .winograd2x2, .winograd2x2, .winograd2x2, .winograd2x2])

        var resumed = options("stopped")
        (resumed.resume, resumed.epochsGiven, resumed.trainLimit, resumed.testLimit) = ("\(base)/stopped", false, nil, nil)
        resumed.dumpWeightsPrefix = "\(base)/resumed-weights"
        XCTAssertEqual(Trainer.runSimulated(resumed), 0)
        XCTAssertEqual(try weights("whole"), try weights("resumed"), "resumed weights must equal the uninterrupted run's, bit for bit")
    }

    /// `auto` records its choice; a resume takes the recorded plan (here replaced by another,
    /// to tell it from a fresh timing) and records it again.
    func testAutoRecordsItsChoiceAndAResumeUsesTheRecord() throws {
        var first = options("auto")
        (first.maxSteps, first.convolutionAlgorithm) = (4, .auto)
        XCTAssertEqual(Trainer.runSimulated(first), 0)
        let newest = try Checkpoint.newestValid(run: "\(base)/auto")
        let chosen = try XCTUnwrap(newest.manifest.convolutionAlgorithms)
        XCTAssertEqual(chosen.layers.map(\.layer), ["conv1", "conv2", "conv3", "conv4", "conv5"])
        XCTAssertEqual(chosen.layers[0].algorithms.forward, .gemm, "conv1 has stride 2: GEMM is its only algorithm")

        var planted = chosen
        for i in planted.layers.indices.dropFirst() {
            planted.layers[i].algorithms = ConvolutionAlgorithms(forward: .winograd4x4, inputGradient: .gemm, weightGradient: .winograd2x2)
        }
        var manifest = newest.manifest
        manifest.convolutionAlgorithms = planted
        // Sealed again, as save seals it: the manifest carries its own checksum.
        try JSONEncoder().encode(manifest.sealed()).write(to: URL(fileURLWithPath: "\(newest.path)/\(Checkpoint.manifestName)"))

        var resumed = options("auto")
        (resumed.resume, resumed.epochsGiven, resumed.maxSteps, resumed.convolutionAlgorithm) = ("\(base)/auto", false, 7, .auto)
        resumed.dumpWeightsPrefix = nil
        XCTAssertEqual(Trainer.runSimulated(resumed), 0)
        XCTAssertEqual(try Checkpoint.newestValid(run: "\(base)/auto").manifest.convolutionAlgorithms, planted)
    }

    func testDamagedCheckpointsAreRefused() throws {
        var o = options("run")
        o.epochs = 1
        XCTAssertEqual(Trainer.runSimulated(o), 0)
        let steps = Checkpoint.steps(run: "\(base)/run")
        XCTAssertEqual(steps, [6, 9, 10], "every 3 steps and at the epoch's end, newest 3 kept")
        let newest = String(format: "\(base)/run/checkpoints/step-%07d", 10)
        let older = String(format: "\(base)/run/checkpoints/step-%07d", 9)
        XCTAssertNoThrow(try Checkpoint.validate(newest))

        // A flipped byte.
        let file = newest + "/tower1.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try Checkpoint.validate(newest)) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        // The run's newest valid checkpoint is then the one before, and the damaged one is named.
        let found = try Checkpoint.newestValid(run: "\(base)/run")
        XCTAssertEqual(found.path, older)
        XCTAssertEqual(found.skipped.count, 1)

        // Truncation.
        let olderFile = older + "/tower0.safetensors"
        let olderBytes = try Data(contentsOf: URL(fileURLWithPath: olderFile))
        try olderBytes.prefix(olderBytes.count - 100).write(to: URL(fileURLWithPath: olderFile))
        XCTAssertThrowsError(try Checkpoint.validate(older)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }

        // A missing manifest: not a checkpoint at all.
        let oldest = String(format: "\(base)/run/checkpoints/step-%07d", 6)
        try FileManager.default.removeItem(atPath: oldest + "/manifest.json")
        XCTAssertThrowsError(try Checkpoint.validate(oldest)) { XCTAssertTrue("\($0)".contains("manifest.json"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.newestValid(run: "\(base)/run")) { XCTAssertTrue("\($0)".contains("no valid checkpoint"), "\($0)") }
    }

    func testCheckpointOfAnotherModelIsRefused() throws {
        var o = options("run")
        o.epochs = 1
        o.checkpointEvery = 0
        XCTAssertEqual(Trainer.runSimulated(o), 0)
        var other = options("run")
        other.model = .unsplit
        other.resume = "\(base)/run"
        XCTAssertEqual(Trainer.runSimulated(other), 2)
        var preset = options("run")
        preset.preset = .small
        preset.resume = "\(base)/run"
        XCTAssertEqual(Trainer.runSimulated(preset), 2)
    }

    func testSafeTensorsRoundTrip() throws {
        let tensors = [SafeTensors.Tensor(name: "a.weight", shape: [2, 3], values: [1, -2, 3.5, 0, .pi, -0]),
                       SafeTensors.Tensor(name: "b", shape: [1], values: [42])]
        let data = SafeTensors.encode(tensors, metadata: ["preset": "small"])
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + length) % 8, 0, "the data section starts 8-byte aligned")
        let decoded = try SafeTensors.decode(data, source: "test")
        XCTAssertEqual(decoded.tensors, tensors.sorted { $0.name < $1.name })
        XCTAssertEqual(decoded.metadata, ["preset": "small"])
        XCTAssertThrowsError(try SafeTensors.decode(data.prefix(data.count - 4), source: "short"))
        XCTAssertThrowsError(try SafeTensors.decode(Data([1, 2, 3]), source: "tiny"))
    }

    func testSchedules() {
        var plateau = LearningRateSchedule(kind: .plateau, initialRate: 0.01)
        plateau.patience = 2
        XCTAssertNil(plateau.endEpoch(1, validationError: 0.30))
        XCTAssertNil(plateau.endEpoch(2, validationError: 0.20))
        XCTAssertNil(plateau.endEpoch(3, validationError: 0.21))
        XCTAssertNotNil(plateau.endEpoch(4, validationError: 0.20))  // two epochs without beating 0.20
        XCTAssertEqual(plateau.rate, 0.001, accuracy: 1e-9)
        plateau.minimum = 0.0005
        _ = plateau.endEpoch(5, validationError: 0.3)
        _ = plateau.endEpoch(6, validationError: 0.3)
        XCTAssertEqual(plateau.rate, 0.0005, accuracy: 1e-9, "never below the minimum")

        var step = LearningRateSchedule(kind: .step, initialRate: 0.1)
        step.stepEpochs = 2
        let rates = (1...5).map { epoch -> Float in _ = step.endEpoch(epoch, validationError: 0); return step.rate }
        XCTAssertEqual(rates[0], 0.1, accuracy: 1e-9)
        XCTAssertEqual(rates[1], 0.01, accuracy: 1e-9)
        XCTAssertEqual(rates[3], 0.001, accuracy: 1e-9)
        var constant = LearningRateSchedule(kind: .constant, initialRate: 0.1)
        XCTAssertNil(constant.endEpoch(1, validationError: 1))
    }

    /// Rates print as people write them: 0.01 x 0.1 x 0.1 in Float is 0.000100000005.
    func testRatesPrintWithoutFloatNoise() {
        var schedule = LearningRateSchedule(kind: .step, initialRate: 0.01)
        schedule.stepEpochs = 1
        _ = schedule.endEpoch(1, validationError: 0)
        let change = schedule.endEpoch(2, validationError: 0)
        XCTAssertNotEqual("\(schedule.rate)", "0.0001", "the Float product carries noise, which the text must hide")
        XCTAssertEqual(change, "learning rate 0.001 -> 0.0001 after epoch 2")
        XCTAssertEqual(schedule.summary, "lr 0.0001")
        // 0.01 x 0.1^3 is 1.0000001e-06 in Float; clamped to the minimum 1e-05 from 1.0000001e-05
        // it changes by float noise only, which is no "learning rate 1e-05 -> 1e-05" line.
        XCTAssertEqual(schedule.endEpoch(3, validationError: 0), "learning rate 0.0001 -> 1e-05 after epoch 3")
        XCTAssertNil(schedule.endEpoch(4, validationError: 0))
        XCTAssertEqual(schedule.summary, "lr 1e-05")
    }
}
