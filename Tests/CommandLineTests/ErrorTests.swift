import Foundation
import XCTest

/// Bad input: a clear one-line error, a non-zero exit, and no rank left waiting.
final class ErrorTests: XCTestCase {
    func assertOneLineError(_ result: CommandResult, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "hung", file: file, line: line)
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        let errors = result.error.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, "exactly one error line, from rank 0: \(result.error)", file: file, line: line)
        for word in words {
            XCTAssertTrue(result.error.contains(word), "error should mention \(word): \(result.error)", file: file, line: line)
        }
        XCTAssertFalse(result.error.contains("Fatal error") || result.error.contains("Stack dump"), result.error, file: file, line: line)
    }

    func testMissingDataDirectoryNamesThePackageAndTheOption() throws {
        let simulated = try CommandRunner.alexnet(["train", "--simulate", "--data", "/nonexistent/fmnist"], timeout: 60)
        assertOneLineError(simulated, mentions: ["dataset-fashion-mnist", "--data", "/nonexistent/fmnist"])
        let mpi = try CommandRunner.mpi(ranks: 2, ["train", "--data", "/nonexistent/fmnist"], timeout: 60)
        assertOneLineError(mpi, mentions: ["dataset-fashion-mnist", "--data"])
    }

    func testWrongRankCountEndsEveryRank() throws {
        let result = try CommandRunner.mpi(ranks: 3, ["train", "--train-limit", "64", "--test-limit", "10", "--max-steps", "1"], timeout: 60)
        assertOneLineError(result, mentions: ["3 rank", "mpirun -np 2", "--simulate"])
    }

    func testInvalidOptionValues() throws {
        for (arguments, words) in [(["--batch-size", "0"], ["--batch-size"]), (["--lr", "-1"], ["--lr"]), (["--lr", "nan"], ["--lr"]),
                                   (["--epochs", "0"], ["--epochs"]), (["--preset", "huge"], ["huge", "small"]),
                                   (["--model", "quad"], ["quad", "paper-1gpu"])] {
            let result = try CommandRunner.alexnet(["train"] + arguments, timeout: 30)
            assertOneLineError(result, mentions: words)
        }
        let mpi = try CommandRunner.mpi(ranks: 2, ["train", "--batch-size", "0"], timeout: 60)
        assertOneLineError(mpi, mentions: ["--batch-size"])
    }

    func testUnwritableRunDirectory() throws {
        let result = try CommandRunner.alexnet(["train", "--simulate", "--run-dir", "/proc/not-a-place/run"], timeout: 60)
        assertOneLineError(result, mentions: ["--run-dir"])
    }
}
