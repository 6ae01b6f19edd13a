import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation
import XCTest

/// The split model on an odd number of classes: fc8's towers hold ceil(C/2) and floor(C/2)
/// classes. Replicas and checkpoints follow the uneven split (the export: `ExportTests`).
final class OddClassTrainingTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = NSTemporaryDirectory() + "odd-classes-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: base)
        StopRequest.clear()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// The tiny split model on `data`, batch 10.
    func options(_ run: String, data: String) -> TrainingOptions {
        var o = TrainingOptions()
        o.preset = .tiny
        o.epochs = 2
        o.batchSize = 10
        o.learningRate = 0.05
        o.logEvery = 1000
        o.dataDirectory = data
        o.runDirectory = "\(base)/\(run)"
        o.dumpWeightsPrefix = "\(base)/\(run)-weights"
        return o
    }

    func towerTensors(_ run: String) throws -> [[String: SafeTensors.Tensor]] {
        try (0..<2).map { tower in
            let path = "\(base)/\(run)-weights-tower\(tower).safetensors"
            let file = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: path)), source: path)
            return Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0) })
        }
    }

    func testReplicasOnFiveClassesGiveTheWeightsOfOne() throws {
        let data = try writeColourClassFolder(at: base + "/data", classes: 5, train: 6, val: 2)  // 30 images: 3 steps of 10
        var one = options("one", data: data)
        one.checkpoints = false
        XCTAssertEqual(Trainer.runSimulated(one), 0)
        let single = try towerTensors("one")
        XCTAssertEqual(single.map { $0["fc8.weight"]?.shape }, [[3, 16], [2, 16]], "tower 0 holds 3 classes, tower 1 two")
        XCTAssertEqual(single.map { $0["fc8.bias"]?.shape }, [[3], [2]])
        var two = options("two", data: data)
        two.checkpoints = false
        two.replicas = 2
        XCTAssertEqual(Trainer.runSimulated(two), 0)
        let replicated = try towerTensors("two")
        for tower in 0..<2 {
            XCTAssertEqual(Set(replicated[tower].keys), Set(single[tower].keys))
            for (name, tensor) in single[tower] {
                let other = try XCTUnwrap(replicated[tower][name])
                XCTAssertEqual(other.shape, tensor.shape)
                let scale = Double(tensor.values.map { abs($0) }.max() ?? 0)
                let difference = Double(zip(tensor.values, other.values).map { abs($0 - $1) }.max() ?? 0)
                XCTAssertLessThanOrEqual(difference / max(scale, 1e-30), 1e-5, "tower \(tower) \(name)")
            }
        }
    }

    func testSevenClassCheckpointResumesBitIdentical() throws {
        let data = try writeColourClassFolder(at: base + "/data", classes: 7, train: 6, val: 1)  // 42 images: 5 steps an epoch, the last of 2
        var whole = options("whole", data: data)
        whole.checkpointEvery = 2
        XCTAssertEqual(Trainer.runSimulated(whole), 0)
        var stopped = options("stopped", data: data)
        stopped.checkpointEvery = 2
        stopped.maxSteps = 3  // mid-epoch 1; its newest checkpoint is at step 2
        stopped.dumpWeightsPrefix = nil
        XCTAssertEqual(Trainer.runSimulated(stopped), 0)
        let newest = try Checkpoint.newestValid(run: "\(base)/stopped")
        XCTAssertEqual(newest.manifest.step, 2)
        XCTAssertEqual(newest.manifest.classes, 7)
        let tower1 = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: newest.path + "/tower1.safetensors")), source: "tower1")
        XCTAssertEqual(tower1.tensors.first { $0.name == "fc8.weight.momentum" }?.shape, [3, 16], "tower 1 holds 3 of the 7 classes")

        var resumed = options("stopped", data: data)
        resumed.resume = "\(base)/stopped"
        resumed.epochsGiven = false
        resumed.dataDirectoryGiven = false
        resumed.dumpWeightsPrefix = "\(base)/resumed-weights"
        XCTAssertEqual(Trainer.runSimulated(resumed), 0)
        for tower in 0..<2 {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(base)/whole-weights-tower\(tower).safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(base)/resumed-weights-tower\(tower).safetensors"))
            XCTAssertTrue(a == b, "tower \(tower): the resumed run ends with the uninterrupted run's weights")
        }
    }
}

/// `root/{train,val}/class<k>/` of 20x20 colour PNGs, `train` and `val` per class, each class a
/// different mean colour over noise. Returns `root`.
func writeColourClassFolder(at root: String, classes: Int, train: Int, val: Int) throws -> String {
    var random = KeyedRandom(UInt64(classes))
    for (split, count) in [("train", train), ("val", val)] {
        for label in 0..<classes {
            let folder = "\(root)/\(split)/class\(label)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let tint = (0..<3).map { 40 + (label * 70 + $0 * 90) % 160 }
            for i in 0..<count {
                let pixels = (0..<(20 * 20 * 3)).map { UInt8(tint[$0 % 3] + random.below(60)) }
                try ImageEncoder.writePNG(pixels, width: 20, height: 20, channels: 3, to: "\(folder)/\(i).png")
            }
        }
    }
    return root
}
