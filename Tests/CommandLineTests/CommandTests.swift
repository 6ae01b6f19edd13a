import Foundation
import XCTest

final class CommandTests: XCTestCase {
    func testSummaryOfD2LUnsplitPrintsTheChaptersShapes() throws {
        let result = try CommandRunner.alexnet(["summary", "--preset", "d2l", "--model", "unsplit"], timeout: 30)
        XCTAssertEqual(result.status, 0, result.error)
        let rows = result.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let shapes = rows.filter { $0.count > 2 && ["Conv2d", "MaxPool2d", "Flatten", "Linear"].contains($0[1]) }
            .map { "\($0[1]) \($0[$0[1] == "Conv2d" || $0[1] == "Linear" ? 3 : 2])" }
        XCTAssertEqual(shapes, ["Conv2d 96x54x54", "MaxPool2d 96x26x26", "Conv2d 256x26x26", "MaxPool2d 256x12x12",
                                "Conv2d 384x12x12", "Conv2d 384x12x12", "Conv2d 256x12x12", "MaxPool2d 256x5x5",
                                "Flatten 6400", "Linear 4096", "Linear 4096", "Linear 10"])
    }

    func testSummaryOfSplitShowsPerRankAndTotals() throws {
        let result = try CommandRunner.alexnet(["summary", "--preset", "paper", "--classes", "1000"], timeout: 30)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("48x55x55"), result.output)
        XCTAssertTrue(result.output.contains("96x55x55"), result.output)
        XCTAssertTrue(result.output.contains("both towers"), result.output)
        XCTAssertTrue(result.output.contains("own tower"), result.output)
    }

    func testPlainTrainSimulatesAndSaysSo() throws {
        let directory = NSTemporaryDirectory() + "plain-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try CommandRunner.alexnet(["train", "--preset", "tiny", "--train-limit", "64", "--test-limit", "16",
                                                "--batch-size", "16", "--max-steps", "2", "--run-dir", directory], timeout: 60)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("not started by mpirun"), result.output)
        XCTAssertTrue(result.output.contains("test accuracy"), result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/metrics.jsonl"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/config.json"))
    }

    func testUnsplitUnderMPISaysHowItRuns() throws {
        let directory = NSTemporaryDirectory() + "unsplit-mpi-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--model", "unsplit", "--train-limit", "64",
                                                      "--test-limit", "16", "--batch-size", "16", "--max-steps", "2",
                                                      "--run-dir", directory], timeout: 60)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("runs on rank 0 alone"), result.output)
    }
}
