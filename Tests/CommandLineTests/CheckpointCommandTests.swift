import CPNG
import Foundation
import XCTest

/// Checkpoints through the real binary: a rank killed under mpirun, Ctrl-C, eval and export.
final class CheckpointCommandTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = NSTemporaryDirectory() + "checkpoint-cli-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: base)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// Pids of alexnet-split processes whose command line mentions `marker`, with their MPI rank.
    static func ranks(marker: String) -> [(pid: Int32, rank: Int)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> (Int32, Int)? in
            guard let pid = Int32(entry),
                  let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
                  command.contains("alexnet-split"), command.contains(marker), !command.contains("mpirun"),
                  let environment = try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8),
                  let rank = environment.split(separator: "\0").first(where: { $0.hasPrefix("OMPI_COMM_WORLD_RANK=") })
            else { return nil }
            return (pid, Int(rank.dropFirst("OMPI_COMM_WORLD_RANK=".count)) ?? -1)
        }
    }

    func testKilledRankEndsTheJobAndTheCheckpointResumes() throws {
        let run = base + "/killed"
        let arguments = ["train", "--preset", "tiny", "--epochs", "400", "--train-limit", "640", "--test-limit", "32",
                         "--batch-size", "32", "--checkpoint-every", "5", "--log-every", "100000", "--run-dir", run]
        var killedAt = Date.distantFuture
        let result = try CommandRunner.mpi(ranks: 2, arguments, timeout: 90, interrupt: (SIGKILL, { output in
            guard output.contains("checkpoints/step-0000015"), let victim = Self.ranks(marker: run).first(where: { $0.rank == 1 }) else {
                return false
            }
            kill(victim.pid, SIGKILL)
            killedAt = Date()
            return false  // do not signal mpirun itself
        }))
        XCTAssertFalse(result.timedOut, "mpirun must end when a rank dies")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(killedAt), 10, "mpirun ended within seconds of the kill")
        XCTAssertTrue(Self.ranks(marker: run).isEmpty, "no rank is left behind")

        // The newest checkpoint is whole, and the run resumes from it to the end.
        let check = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--test-limit", "32"], timeout: 60)
        XCTAssertEqual(check.status, 0, check.error)
        let resumed = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--resume", run, "--epochs", "5"], timeout: 90)
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.output.contains("resumed from \(run)/checkpoints/step-"), resumed.output)
        XCTAssertTrue(resumed.output.contains("test accuracy"), resumed.output)
    }

    func testCtrlCWritesACheckpointAndSaysHowToResume() throws {
        let run = base + "/stopped"
        let result = try CommandRunner.alexnet(
            ["train", "--simulate", "--preset", "tiny", "--epochs", "400", "--train-limit", "640", "--test-limit", "32",
             "--batch-size", "32", "--log-every", "20", "--run-dir", run],
            timeout: 90, interrupt: (SIGINT, { $0.contains("epoch 3/400") }))
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.status, 130, result.error)
        XCTAssertTrue(result.output.contains("alexnet-split train --resume \(run)"), result.output)
        let resumed = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--resume", run, "--epochs", "4"], timeout: 90)
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.output.contains("resumed from"), resumed.output)
    }

    func testEvalAndExport() throws {
        let run = base + "/run"
        let train = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--epochs", "1", "--train-limit", "64",
                                               "--test-limit", "16", "--batch-size", "16", "--run-dir", run], timeout: 60)
        XCTAssertEqual(train.status, 0, train.error)
        let evaluation = try CommandRunner.mpi(ranks: 2, ["eval", "--checkpoint", run, "--test-limit", "16"], timeout: 60)
        XCTAssertEqual(evaluation.status, 0, evaluation.error)
        XCTAssertTrue(evaluation.output.contains("test top-1"), evaluation.output)
        let export = try CommandRunner.alexnet(["export", "--checkpoint", run, "--out", base + "/model.safetensors", "--print-pytorch"], timeout: 30)
        XCTAssertEqual(export.status, 0, export.error)
        XCTAssertTrue(export.output.contains("load_state_dict"), export.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: base + "/model.safetensors"))
        // predict: a PNG made from a grey gradient, a 3-channel PNG of another size, and a file that is not an image.
        let grey = base + "/grey.png", colour = base + "/colour.png", bogus = base + "/bogus.png"
        XCTAssertTrue(writePNG(grey, width: 28, height: 28, channels: 1, pixels: (0..<784).map { UInt8($0 % 256) }))
        XCTAssertTrue(writePNG(colour, width: 40, height: 20, channels: 3, pixels: (0..<2400).map { UInt8(($0 * 7) % 256) }))
        _ = FileManager.default.createFile(atPath: bogus, contents: Data("not an image".utf8))
        let predict = try CommandRunner.mpi(ranks: 2, ["predict", "--checkpoint", run, grey, colour, bogus], timeout: 60)
        XCTAssertEqual(predict.status, 1, "one file could not be read")
        XCTAssertTrue(predict.error.contains("bogus.png"), predict.error)
        let classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        for file in [grey, colour] {
            let line = try XCTUnwrap(predict.output.split(separator: "\n").first { $0.hasPrefix(file + ": ") }, predict.output)
            let entries = line.dropFirst(file.count + 2).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            XCTAssertEqual(entries.count, 5, String(line))
            let probabilities = entries.compactMap { Double($0.split(separator: " ").last!.dropLast()) }
            XCTAssertEqual(probabilities, probabilities.sorted(by: >), "best first")
            XCTAssertLessThanOrEqual(probabilities.reduce(0, +), 100.5)
            XCTAssertTrue(entries.allSatisfy { entry in classes.contains { entry.hasPrefix($0 + " ") } }, String(line))
        }
        let missing = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", base + "/nothing-here"], timeout: 30)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.error.contains("neither a checkpoint"), missing.error)
    }

    /// A PNG through libpng's simplified writer.
    func writePNG(_ path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) -> Bool {
        var image = png_image()
        image.version = cpng_image_version()
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = channels == 1 ? cpng_format_gray() : cpng_format_rgb()
        return png_image_write_to_file(&image, path, 0, pixels, 0, nil) != 0
    }
}
