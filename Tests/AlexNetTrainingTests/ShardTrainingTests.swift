import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation
import XCTest

/// Training on shards: streamed through the read-ahead it is bit-identical to holding the same
/// shards in memory, and to itself resumed in mid-epoch.
final class ShardTrainingTests: XCTestCase {
    func testStreamedShardsTrainAsInMemoryAndResumeBitIdentically() throws {
        let root = NSTemporaryDirectory() + "shard-training-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var random = KeyedRandom(5)
        for (split, count) in [("train", 10), ("val", 3)] {
            for name in ["ant", "bee", "cow", "dog"] {
                try FileManager.default.createDirectory(atPath: "\(root)/photos/\(split)/\(name)", withIntermediateDirectories: true)
                for i in 0..<count {
                    let pixels = (0..<(26 * 21 * 3)).map { _ in UInt8(random.below(256)) }
                    try ImageEncoder.writeJPEG(pixels, width: 26, height: 21, channels: 3, quality: 90, to: "\(root)/photos/\(split)/\(name)/\(i).jpg")
                }
            }
        }
        var prepare = PrepareOptions(source: "\(root)/photos", output: "\(root)/shards")
        prepare.imageSize = 17  // the tiny preset's 15 x 256/227
        prepare.photosPerShard = 7
        _ = try Prepare.run(prepare) { _ in }

        func options(_ name: String, streamed: Bool) -> TrainingOptions {
            var o = TrainingOptions()
            o.preset = .tiny
            o.epochs = 2
            o.batchSize = 8
            o.logEvery = 1000
            o.dataDirectory = "\(root)/shards"
            o.runDirectory = "\(root)/\(name)"
            o.dumpWeightsPrefix = "\(root)/\(name)-weights"
            o.data.inMemoryLimit = streamed ? 0 : nil
            return o
        }
        func weights(_ name: String) throws -> [Data] {
            try (0..<2).map { try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(name)-weights-tower\($0).safetensors")) }
        }
        XCTAssertEqual(Trainer.runSimulated(options("memory", streamed: false)), 0)
        XCTAssertEqual(Trainer.runSimulated(options("streamed", streamed: true)), 0)
        XCTAssertEqual(try weights("memory"), try weights("streamed"), "the same photos in the same (seed, epoch) order, the same crops")
        XCTAssertEqual(try losses("\(root)/memory"), try losses("\(root)/streamed"))

        // Stop at step 7 (epoch 2 of 5 steps each), remove the last checkpoint, resume from step 6.
        var stopped = options("resumed", streamed: true)
        stopped.maxSteps = 7
        stopped.checkpointEvery = 3
        stopped.dumpWeightsPrefix = nil
        XCTAssertEqual(Trainer.runSimulated(stopped), 0)
        try FileManager.default.removeItem(atPath: "\(root)/resumed/checkpoints/step-0000007")
        var resumed = TrainingOptions()
        resumed.preset = .tiny
        resumed.resume = "\(root)/resumed"
        resumed.runDirectory = "\(root)/resumed"
        resumed.epochsGiven = false
        resumed.dataDirectoryGiven = false
        resumed.logEvery = 1000
        resumed.dumpWeightsPrefix = "\(root)/resumed-weights"
        XCTAssertEqual(Trainer.runSimulated(resumed), 0)
        XCTAssertEqual(try weights("streamed"), try weights("resumed"), "streamed and resumed in mid-epoch: bit-identical")
    }

    func losses(_ run: String) throws -> [String] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .flatMap { $0.split(separator: ",").filter { $0.contains("loss") }.map(String.init) }
    }
}
