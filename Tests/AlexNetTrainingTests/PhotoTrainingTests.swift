import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTraining
import Foundation
import XCTest

/// The paper's photo pipeline inside training and testing.
final class PhotoTrainingTests: XCTestCase {
    /// Random colour squares of side `size` with labels cycling through `classes`.
    func photos(_ count: Int, size: Int, classes: Int, seed: UInt64) -> LabeledImages {
        var random = KeyedRandom(seed)
        return LabeledImages(height: size, width: size, channels: 3, pixels: (0..<(count * size * size * 3)).map { _ in UInt8(random.below(256)) },
                             labels: (0..<count).map { Int32($0 % classes) })
    }

    func testTenCropIsTheAverageOfTheTenViewsOneByOne() throws {
        let data = DataSet(name: "random", format: .folder, train: photos(12, size: 17, classes: 4, seed: 1),
                           test: photos(7, size: 17, classes: 4, seed: 2), classNames: ["a", "b", "c", "d"])
        let layout = DataLayout(format: .folder, preprocessing: .paper, imageSize: 17, channels: 3)
        let plan = try NetworkPlan(spec: layout.spec(.tiny, classes: 4), model: .split)
        XCTAssertEqual(plan.spec.input.channels, 3, "colour data makes the input colour")
        let network = try Network(plan: plan, communicator: SingleProcessCommunicator(), maxBatch: 3, seed: 5)
        var settings = DataSettings()
        settings.tenCrop = true
        let tenCrop = Evaluator.evaluate(network: network, data: data, layout: layout, settings: settings)
        let views = (0..<10).map { Evaluator.probabilities(network: network, data: data, layout: layout, settings: settings, view: $0) }
        XCTAssertNotEqual(views[0], views[1], "the patches differ, so the average means something")
        var (loss, top1, top5) = (0.0, 0, 0)
        for i in 0..<7 {
            let average = (0..<4).map { k in views.map { $0[i][k] }.reduce(0, +) / 10 }
            let label = Int(data.test.labels[i])
            loss -= log(average[label])
            let ranked = average.indices.sorted { average[$0] > average[$1] }
            top1 += ranked[0] == label ? 1 : 0
            top5 += ranked.prefix(5).contains(label) ? 1 : 0
        }
        XCTAssertEqual(tenCrop.loss, loss / 7, accuracy: 1e-9)
        XCTAssertEqual(tenCrop.top1, Double(top1) / 7)
        XCTAssertEqual(tenCrop.top5, Double(top5) / 7)
        settings.tenCrop = false
        let centre = Evaluator.evaluate(network: network, data: data, layout: layout, settings: settings)
        let centreLoss = (0..<7).reduce(0.0) { $0 - log(views[0][$1][Int(data.test.labels[$1])]) } / 7
        XCTAssertEqual(centre.loss, centreLoss, accuracy: 1e-5, "without --ten-crop: the centre patch")
    }

    func testTrainingOnAPhotoFolderIsTheSameWithAndWithoutPrefetch() throws {
        let root = NSTemporaryDirectory() + "photo-training-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var random = KeyedRandom(3)
        for (split, count) in [("train", 12), ("val", 3)] {
            for name in ["ant", "bee", "cow", "dog"] {
                try FileManager.default.createDirectory(atPath: "\(root)/data/\(split)/\(name)", withIntermediateDirectories: true)
                for i in 0..<count {
                    let pixels = (0..<(24 * 20 * 3)).map { _ in UInt8(random.below(256)) }
                    try ImageEncoder.writePNG(pixels, width: 24, height: 20, channels: 3, to: "\(root)/data/\(split)/\(name)/\(i).png")
                }
            }
        }
        func run(_ name: String, prefetch: Bool, stopAt: Int? = nil) throws -> [Data] {
            var o = TrainingOptions()
            o.preset = .tiny
            o.epochs = 2
            o.batchSize = 8
            o.logEvery = 1000
            o.dataDirectory = "\(root)/data"
            o.runDirectory = "\(root)/\(name)"
            o.dumpWeightsPrefix = "\(root)/\(name)-weights"
            o.data.prefetch = prefetch
            if let stopAt {  // stop in mid-epoch 2, then resume from the checkpoint before it
                o.maxSteps = stopAt
                o.checkpointEvery = 2
                o.dumpWeightsPrefix = nil
                XCTAssertEqual(Trainer.runSimulated(o), 0)
                try FileManager.default.removeItem(atPath: "\(root)/\(name)/checkpoints/" + String(format: "step-%07d", stopAt))
                o = TrainingOptions()
                o.preset = .tiny
                o.resume = "\(root)/\(name)"
                o.epochsGiven = false
                o.dataDirectoryGiven = false
                o.logEvery = 1000
                o.dumpWeightsPrefix = "\(root)/\(name)-weights"
            }
            XCTAssertEqual(Trainer.runSimulated(o), 0)
            return try (0..<2).map { try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(name)-weights-tower\($0).safetensors")) }
        }
        let whole = try run("prefetch", prefetch: true)
        XCTAssertEqual(whole, try run("inline", prefetch: false), "bit-identical weights")
        XCTAssertEqual(whole, try run("resumed", prefetch: true, stopAt: 9), "resumed in mid-epoch: the same crops, mirrors and noise")
        let statistics = try XCTUnwrap(FileManager.default.contents(atPath: "\(root)/prefetch/statistics.safetensors"))
        XCTAssertEqual(try SafeTensors.decode(statistics, source: "statistics").tensors.first { $0.name == "mean" }?.shape, [3, 17, 17],
                       "the mean image of the stored 17x17 squares (15 x 256/227), cached with the run")
        let config = try String(contentsOfFile: "\(root)/prefetch/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"ant\",\"bee\",\"cow\",\"dog\""), "class names saved with the run: \(config)")
    }
}
