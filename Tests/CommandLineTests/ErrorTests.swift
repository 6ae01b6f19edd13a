import Foundation
import XCTest

/// Bad input: a clear one-line error, a non-zero exit, and no rank left waiting.
final class ErrorTests: XCTestCase {
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
                                   (["--model", "quad"], ["quad", "paper-1gpu"]), (["--bucket-mib", "0"], ["--bucket-mib"]),
                                   (["--bucket-mib", "nan"], ["--bucket-mib"]), (["--progress", "often"], ["often", "thread"])] {
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
