import AlexNetData
import Foundation
import XCTest

/// Folders with an odd number of classes through the binary: fc8's classes split 3 + 2 (or
/// 2 + 1, 4 + 3) over the towers, the logits gathered with MPI_Allgatherv under mpirun and with
/// its in-process twin under --simulate, bit for bit the same.
final class OddClassCommandTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "odd-class-command-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func writeColourJPEGs(classes: Int, train: Int, val: Int) throws -> String {
        try writeColourJPEGFolders(classes: classes, train: train, val: val, under: root)
    }

    /// Trains under `mpirun -np ranks` and simulated with the same arguments; both must succeed
    /// with the same logged losses and the same tower weights, bit for bit. Returns mpirun's output.
    func assertMPIEqualsSimulation(_ arguments: [String], ranks: Int = 2, simulated extra: [String] = [],
                                   file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let mpi = try CommandRunner.mpi(ranks: ranks, arguments + ["--run-dir", "\(root)/mpi", "--dump-weights", "\(root)/mpi/w"], timeout: 300)
        XCTAssertFalse(mpi.timedOut, file: file, line: line)
        XCTAssertEqual(mpi.status, 0, mpi.error, file: file, line: line)
        let simulated = try CommandRunner.alexnet(arguments + extra + ["--simulate", "--run-dir", "\(root)/sim", "--dump-weights", "\(root)/sim/w"],
                                                  timeout: 300)
        XCTAssertEqual(simulated.status, 0, simulated.error, file: file, line: line)
        let mpiLosses = try losses("\(root)/mpi")
        XCTAssertGreaterThan(mpiLosses.count, 4, file: file, line: line)
        XCTAssertEqual(mpiLosses, try losses("\(root)/sim"), file: file, line: line)
        try assertSameTowerWeights("\(root)/mpi/w", "\(root)/sim/w", "mpirun -np \(ranks) against --simulate", file: file, line: line)
        return mpi.output
    }

    /// The case: a 5-class folder of colour JPEGs trains under `mpirun -np 2` with the
    /// split model and reports top-1 and top-5; eval, predict and export follow the 3 + 2 split.
    func testFiveClassColourJPEGFolderTrainsUnderMPI() throws {
        let data = try writeColourJPEGs(classes: 5, train: 12, val: 4)
        let output = try assertMPIEqualsSimulation(["train", "--preset", "small", "--data", data, "--epochs", "2",
                                                    "--batch-size", "15", "--log-every", "1"])
        XCTAssertTrue(output.contains("60 train, 20 test images, 5 classes"), output)
        XCTAssertTrue(output.contains("2 MPI ranks"), output)
        let epochLines = output.split(separator: "\n").filter { $0.contains("done in") }
        XCTAssertEqual(epochLines.count, 2, output)
        XCTAssertTrue(epochLines.allSatisfy { $0.contains("top-1") && $0.contains("top-5") }, output)
        XCTAssertTrue(output.contains("test accuracy") && output.contains("(top-5 "), output)

        let eval = try CommandRunner.mpi(ranks: 2, ["eval", "--checkpoint", "\(root)/mpi"], timeout: 120)
        XCTAssertEqual(eval.status, 0, eval.error)
        XCTAssertTrue(eval.output.contains("test top-1") && eval.output.contains("top-5") && eval.output.contains("20 images"), eval.output)
        let predict = try CommandRunner.mpi(ranks: 2, ["predict", "--checkpoint", "\(root)/mpi", "\(data)/val/hue4/0.jpg"], timeout: 120)
        XCTAssertEqual(predict.status, 0, predict.error)
        XCTAssertEqual((0..<5).filter { predict.output.contains("hue\($0) ") }.count, 5, "all five classes, by name: \(predict.output)")
        let export = try CommandRunner.alexnet(["export", "--checkpoint", "\(root)/mpi", "--out", "\(root)/model.safetensors",
                                                "--print-pytorch"], timeout: 60)
        XCTAssertEqual(export.status, 0, export.error)
        XCTAssertTrue(export.output.contains("nn.Linear(1024, 5)"), "fc8 merged from 3 + 2 rows: \(export.output)")
        let summary = try CommandRunner.alexnet(["summary", "--preset", "small", "--classes", "5"], timeout: 30)
        XCTAssertTrue(summary.output.contains("3+2") && summary.output.contains("split 3 + 2"), summary.output)
    }

    /// 3 and 7 classes (2 + 1 and 4 + 3) on the tiny preset; with 3 classes "top-5" is top-3, and the run says so.
    func testThreeAndSevenClassesAreBitIdenticalUnderMPI() throws {
        for classes in [3, 7] {
            try? FileManager.default.removeItem(atPath: root)
            let data = try writeColourJPEGs(classes: classes, train: 6, val: 2)
            let output = try assertMPIEqualsSimulation(["train", "--preset", "tiny", "--data", data, "--epochs", "2",
                                                        "--batch-size", "8", "--log-every", "1", "--no-checkpoints"])
            XCTAssertTrue(output.contains("\(classes) classes"), output)
            if classes == 3 {
                XCTAssertTrue(output.contains("top-5 is reported as top-3") && output.contains("top-3 "), output)
            }
        }
    }

    /// Two replicas of the split model on 5 classes: `mpirun -np 4` equals `--simulate --replicas 2`.
    func testFiveClassReplicasAreBitIdenticalUnderMPI() throws {
        let data = try writeColourJPEGs(classes: 5, train: 6, val: 2)
        let output = try assertMPIEqualsSimulation(["train", "--preset", "tiny", "--data", data, "--epochs", "1",
                                                    "--batch-size", "8", "--log-every", "1", "--no-checkpoints"],
                                                   ranks: 4, simulated: ["--replicas", "2"])
        XCTAssertTrue(output.contains("4 MPI ranks: 2 replicas"), output)
    }

    /// One class folder is no classifier: one error line from rank 0, every rank ends.
    func testOneClassIsRefusedWithOneLine() throws {
        let data = try writeColourJPEGs(classes: 1, train: 4, val: 1)
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--data", data, "--epochs", "1",
                                                      "--run-dir", "\(root)/run"], timeout: 60)
        assertOneLineError(result, mentions: ["1 class", "at least 2"])
        XCTAssertEqual(result.status, 2)
    }
}
