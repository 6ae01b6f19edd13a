import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
import AlexNetTraining
import Foundation
import XCTest

/// Memory admission's parts that need no process: the data's size before it is read, the
/// network's size against what Network allocates, the largest batch and the limit's parsing.
final class MemoryAdmissionTests: XCTestCase {
    /// Fashion-MNIST's images are 70000 x 28 x 28 bytes; the gzip trailers must say so.
    func testDataFootprintOfFashionMNISTIsItsPixelCount() throws {
        let directory = FashionMNIST.defaultDirectory
        try XCTSkipUnless(FileManager.default.fileExists(atPath: directory), "needs dataset-fashion-mnist")
        let bytes = DataFootprint.estimate(directory: directory, settings: DataSettings(), preset: .small)
        XCTAssertEqual(bytes, 70000 * 784 + 2 * 16, "pixels plus the two IDX headers")
        var paper = DataSettings()
        paper.preprocessing = .paper
        paper.imageSize = 36
        XCTAssertEqual(DataFootprint.estimate(directory: directory, settings: paper, preset: .small), (70000 * 784 + 32) / 784 * 36 * 36, accuracy: 1000,
                       "re-stored as 36x36 squares")
    }

    /// The estimate's weights are what a Network of the same plan holds: three floats per parameter.
    func testEstimatedParametersMatchTheNetwork() throws {
        let plan = try NetworkPlan(spec: Preset.small.spec(classes: 10), model: .split)
        let network = try Network(plan: plan, communicator: SingleProcessCommunicator(), maxBatch: 4, seed: 1)
        let estimate = MemoryEstimate(stages: network.stagePlans, input: plan.spec.input, batch: 4)
        XCTAssertEqual(estimate.parameters, Double(network.parameters.reduce(0) { $0 + $1.count }) * 12)
        XCTAssertEqual(estimate.stages.count, network.stages.count)
    }

    /// The largest batch that fits does fit, and one more step does not.
    func testLargestBatchIsTheEdgeOfTheLimit() throws {
        var job = MemoryJob(preset: .small, model: .split, batchSize: 100_000, ranksHere: 2)
        job.replicas = 2
        let limit = 2.0 * 1_073_741_824
        let batch = try XCTUnwrap(MemoryAdmission.largestBatch(job, fitting: limit))
        XCTAssertEqual(batch % 2, 0, "a multiple of the replicas")
        XCTAssertLessThanOrEqual(try MemoryAdmission.need(job, batch: batch).total, limit)
        XCTAssertGreaterThan(try MemoryAdmission.need(job, batch: batch + 2).total, limit)
        XCTAssertNil(try MemoryAdmission.largestBatch(job, fitting: 1_000_000), "not even the smallest batch fits in 1 MB")
    }

    func testLimitSizesParse() {
        XCTAssertEqual(MemoryLimit.parseBytes("2G"), 2 * 1_073_741_824)
        XCTAssertEqual(MemoryLimit.parseBytes("512m"), 512 * 1_048_576)
        XCTAssertEqual(MemoryLimit.parseBytes("123"), 123)
        XCTAssertNil(MemoryLimit.parseBytes("lots"))
        XCTAssertGreaterThan(MemoryLimit.current().bytes, 0)
    }
}
