import AlexNetData
import AlexNetTraining
import Foundation
import XCTest

/// A short real training run on Fashion-MNIST (Debian's dataset-fashion-mnist), simulated.
final class ShortTrainingTests: XCTestCase {
    func epochRecords(_ directory: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["kind"] as? String == "epoch" }
    }

    func testSmallSplitLearnsFashionMNIST() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory),
                      "install dataset-fashion-mnist (bash .ci/run does)")
        let directory = NSTemporaryDirectory() + "short-training-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = TrainingOptions()
        options.preset = .small
        options.model = .split
        options.epochs = 3
        options.batchSize = 64
        options.trainLimit = 5000
        options.testLimit = 1000
        options.runDirectory = directory
        options.logEvery = 1000
        XCTAssertEqual(Trainer.runSimulated(options), 0)
        let epochs = try epochRecords(directory)
        XCTAssertEqual(epochs.count, 3)
        let losses = epochs.compactMap { $0["train_loss"] as? Double }
        let accuracy = try XCTUnwrap(epochs.last?["test_top1"] as? Double)
        XCTAssertLessThan(losses[2], losses[0] - 0.3, "training loss must fall: \(losses)")
        XCTAssertGreaterThan(accuracy, 0.5, "10 classes: chance is 0.1")
    }
}
