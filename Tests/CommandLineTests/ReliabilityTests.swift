import AlexNetData
import Foundation
import XCTest

/// The promise under failure (docs/reliability.md): a non-zero exit, one error line naming the cause, no trap,
/// every rank gone, and no half-written file. Each case also adds a row to the reliability table
/// when ALEXNET_SPLIT_RELIABILITY_REPORT names a file (scripts/test does), and the README's
/// table is pasted from it.
final class ReliabilityTests: XCTestCase {
    var base = ""

    override func setUp() {
        base = NSTemporaryDirectory() + "reliability-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: base) }

    /// Appends `| case | command | exit, first error line |` to the report file.
    func report(_ name: String, _ command: String, _ result: CommandResult, _ outcome: String = "") {
        guard let path = ProcessInfo.processInfo.environment["ALEXNET_SPLIT_RELIABILITY_REPORT"] else { return }
        let error = result.error.split(separator: "\n").first { $0.hasPrefix("error:") }.map(String.init) ?? ""
        let text = ([outcome, error.isEmpty ? "" : "`` \(error.replacingOccurrences(of: base, with: "…")) ``"].filter { !$0.isEmpty })
            .joined(separator: "; ").replacingOccurrences(of: "|", with: "\\|")
        let row = "| \(name) | `\(command)` | exit \(result.status)\(text.isEmpty ? "" : "; " + text) |\n"
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(row.utf8))
            handle.closeFile()
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(row.utf8))
        }
    }

    func assertCleanFailure(_ result: CommandResult, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        assertOneLineError(result, mentions: words, file: file, line: line)
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: base))?.filter { $0.contains(".tmp-") } ?? []
        XCTAssertEqual(left, [], "no half-written file", file: file, line: line)
    }

    // MARK: data

    func idx(_ dimensions: [Int], _ payload: [UInt8], magic: [UInt8]? = nil) -> Data {
        var bytes = magic ?? [0, 0, 0x08, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return Data(bytes + payload)
    }

    /// A data folder of raw IDX files, with `change` applied to one of them.
    func dataFolder(_ name: String, images: Int = 4, labels: [UInt8] = [0, 1, 2, 3], testLabels: [UInt8] = [4, 5], imagesFile: Data? = nil) -> String {
        let folder = "\(base)/\(name)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder + "/train-images-idx3-ubyte",
                                       contents: imagesFile ?? idx([images, 28, 28], [UInt8](repeating: 7, count: images * 784)))
        _ = FileManager.default.createFile(atPath: folder + "/train-labels-idx1-ubyte", contents: idx([labels.count], labels))
        _ = FileManager.default.createFile(atPath: folder + "/t10k-images-idx3-ubyte", contents: idx([2, 28, 28], [UInt8](repeating: 9, count: 1568)))
        _ = FileManager.default.createFile(atPath: folder + "/t10k-labels-idx1-ubyte", contents: idx([2], testLabels))
        return folder
    }

    /// `photos/{train,val}/{a,b}/` of small PNGs, plus a truncated PNG (or an empty class).
    func photoFolderWithABadFile(emptyClass: Bool = false) throws -> String {
        let folder = "\(base)/photos-\(emptyClass ? "empty" : "broken")"
        for split in ["train", "val"] {
            for name in ["a", "b"] {
                try FileManager.default.createDirectory(atPath: "\(folder)/\(split)/\(name)", withIntermediateDirectories: true)
                try ImageEncoder.writePNG([UInt8](repeating: name == "a" ? 30 : 200, count: 8 * 8 * 3), width: 8, height: 8, channels: 3,
                                          to: "\(folder)/\(split)/\(name)/0.png")
            }
        }
        if emptyClass {
            try FileManager.default.createDirectory(atPath: "\(folder)/train/empty", withIntermediateDirectories: true)
        } else {
            let png = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/train/a/0.png"))
            try png.prefix(30).write(to: URL(fileURLWithPath: "\(folder)/train/a/broken.png"))
        }
        return folder
    }

    func testBadDataEndsEveryRank() throws {
        let cases: [(String, String, [String])] = [
            ("missing data path", "\(base)/absent", ["dataset-fashion-mnist", "--data"]),
            ("IDX with a wrong magic number", dataFolder("magic", imagesFile: idx([4, 28, 28], [], magic: [1, 2, 3, 4])), ["train-images-idx3-ubyte", "magic"]),
            ("IDX with wrong dimensions", dataFolder("dims", imagesFile: idx([4 * 784], [UInt8](repeating: 1, count: 4 * 784))), ["dimensions"]),
            ("IDX with a truncated payload", dataFolder("short", imagesFile: idx([4, 28, 28], [UInt8](repeating: 1, count: 1000))), ["truncated"]),
            ("image and label counts disagree", dataFolder("counts", labels: [0, 1, 2]), ["4 images", "3 labels"]),
            ("test label out of range", dataFolder("range", testLabels: [4, 42]), ["t10k-labels-idx1-ubyte", "label 42"]),
            ("corrupt photo in an image folder", try photoFolderWithABadFile(), ["broken.png", "--skip-bad-images"]),
            ("empty class folder", try photoFolderWithABadFile(emptyClass: true), ["train/empty", "no image files"]),
            ("empty data set", dataFolder("empty", images: 0, labels: []), ["no images"]),
        ]
        for (name, folder, words) in cases {
            let result = try CommandRunner.mpi(ranks: 2, ["train", "--data", folder, "--run-dir", base + "/run"], timeout: 60)
            assertCleanFailure(result, mentions: words)
            report(name, "mpirun -np 2 alexnet-split train --data DIR", result)
        }
    }

    /// A photo folder whose one JPEG is rewritten to claim `side x side` pixels in 0.3 KB.
    func photoFolderWithAHugeJPEG(side: Int) throws -> String {
        let folder = "\(base)/photos-huge"
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(name)", withIntermediateDirectories: true)
            try ImageEncoder.writePNG([UInt8](repeating: 30, count: 8 * 8 * 3), width: 8, height: 8, channels: 3, to: "\(folder)/\(name)/0.png")
        }
        let jpeg = "\(folder)/a/huge.jpg"
        try ImageEncoder.writeJPEG([UInt8](repeating: 90, count: 64), width: 8, height: 8, channels: 1, to: jpeg)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: jpeg)))
        let frame = try XCTUnwrap((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        for offset in [frame + 5, frame + 7] { (bytes[offset], bytes[offset + 1]) = (UInt8(side >> 8), UInt8(side & 255)) }
        try Data(bytes).write(to: URL(fileURLWithPath: jpeg))
        return folder
    }

    /// A folder of classes, one of whose names is Latin-1 ("d\xe9o"), not UTF-8.
    func photoFolderWithALatin1Class() throws -> String {
        let folder = "\(base)/photos-latin1"
        try FileManager.default.createDirectory(atPath: "\(folder)/a", withIntermediateDirectories: true)
        try ImageEncoder.writePNG([UInt8](repeating: 30, count: 8 * 8 * 3), width: 8, height: 8, channels: 3, to: "\(folder)/a/0.png")
        let name = Array("\(folder)/d".utf8CString.dropLast()) + [CChar(bitPattern: 0xE9), CChar(bitPattern: 0x6F), 0]
        XCTAssertEqual(name.withUnsafeBufferPointer { mkdir($0.baseAddress!, 0o755) }, 0)
        return folder
    }

    func testHostileDataFilesEndEveryRank() throws {
        let allOnes = idx([], [UInt8](repeating: 0xFF, count: 12) + [1, 2, 3], magic: [0, 0, 0x08, 3])
        let cases: [(String, String, [String], [String])] = [
            ("IDX header of all 0xFF (4294967295 images of 4294967295 x 4294967295)", dataFolder("ones", imagesFile: allOnes),
             ["train-images-idx3-ubyte", "4294967295 x 4294967295 x 4294967295"], []),
            ("a 0.3 KB JPEG claiming 60000 x 60000 pixels", try photoFolderWithAHugeJPEG(side: 60000), ["huge.jpg", "60000 x 60000"],
             ["--val-fraction", "0.5"]),
            ("a class folder whose name is not UTF-8", try photoFolderWithALatin1Class(), ["d\\xe9o", "not valid UTF-8"], ["--val-fraction", "0.5"]),
        ]
        for (name, folder, words, extra) in cases {
            let result = try CommandRunner.mpi(ranks: 2, ["train", "--data", folder, "--run-dir", base + "/run"] + extra, timeout: 60)
            assertCleanFailure(result, mentions: words)
            report(name, "mpirun -np 2 alexnet-split train --data DIR" + (extra.isEmpty ? "" : " " + extra.joined(separator: " ")), result)
        }
    }

    /// Rewrites `checkpoint/manifest.json` through `change`, dropping its checksum (a manifest
    /// without one is read with a note, its values still checked).
    func editManifest(_ checkpoint: String, _ change: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: checkpoint + "/manifest.json")
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        object["checksum"] = nil
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func testHostileCheckpointsAreNeverEvaluated() throws {
        let run = base + "/run"
        let trained = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--epochs", "1", "--train-limit", "64",
                                                 "--test-limit", "16", "--batch-size", "16", "--run-dir", run], timeout: 60)
        XCTAssertEqual(trained.status, 0, trained.error)
        let checkpoint = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").sorted().last)
        func copy(_ name: String) throws -> String {
            try FileManager.default.copyItem(atPath: "\(run)/checkpoints/\(checkpoint)", toPath: "\(base)/\(name)")
            return "\(base)/\(name)"
        }
        let swapped = try copy("swapped")
        try FileManager.default.moveItem(atPath: swapped + "/tower0.safetensors", toPath: swapped + "/t")
        try FileManager.default.moveItem(atPath: swapped + "/tower1.safetensors", toPath: swapped + "/tower0.safetensors")
        try FileManager.default.moveItem(atPath: swapped + "/t", toPath: swapped + "/tower1.safetensors")
        let batch = try copy("batch")
        try editManifest(batch) { $0["batchSize"] = 0 }
        let position = try copy("position")
        try editManifest(position) { $0["stepInEpoch"] = 1 << 62 }
        let noFiles = try copy("no-files")
        try editManifest(noFiles) { $0["files"] = [Any]() }
        let cases: [(String, String, [String])] = [
            ("tower files swapped", swapped, ["tower0.safetensors", "checksum"]),
            ("manifest batch size 0", batch, ["manifest.json", "batchSize must be at least 1"]),
            ("manifest position in the epoch 2^62", position, ["manifest.json", "stepInEpoch is 4611686018427387904"]),
            ("manifest listing no files", noFiles, ["manifest.json", "files lists []"]),
        ]
        for (name, path, words) in cases {
            let result = try CommandRunner.mpi(ranks: 2, ["eval", "--checkpoint", path, "--test-limit", "8"], timeout: 60)
            assertCleanFailure(result, mentions: words)
            report(name, "mpirun -np 2 alexnet-split eval --checkpoint CKPT", result)
        }
    }

    // MARK: options and ranks

    func testBadOptionsAndRankCounts() throws {
        let options: [(String, [String], [String])] = [
            ("batch size 0", ["--batch-size", "0"], ["--batch-size"]),
            ("negative learning rate", ["--lr=-0.1"], ["--lr"]),
            ("NaN learning rate", ["--lr", "nan"], ["--lr"]),
            ("0 epochs", ["--epochs", "0"], ["--epochs"]),
            ("unknown preset", ["--preset", "huge"], ["huge"]),
            ("unknown model", ["--model", "quad"], ["quad"]),
            ("unwritable run directory", ["--run-dir", "/proc/none/run"], ["--run-dir"]),
        ]
        for (name, arguments, words) in options {
            let result = try CommandRunner.mpi(ranks: 2, ["train"] + arguments, timeout: 60)
            assertCleanFailure(result, mentions: words)
            report(name, "mpirun -np 2 alexnet-split train " + arguments.joined(separator: " "), result)
        }
        // Not an error for the split model: every rank sees the whole batch, so one image is enough.
        let one = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--batch-size", "1", "--train-limit", "8", "--test-limit", "4",
                                                   "--epochs", "1", "--run-dir", base + "/one"], timeout: 60)
        XCTAssertEqual(one.status, 0, one.error)
        report("a batch smaller than the number of ranks", "mpirun -np 2 alexnet-split train --batch-size 1", one,
               "trains: each rank holds half the kernels and sees the whole batch, so any batch of 1 or more works")
        for ranks in [1, 3] {
            let result = try CommandRunner.mpi(ranks: ranks, ["train", "--train-limit", "64", "--test-limit", "8", "--run-dir", base + "/run"], timeout: 60)
            assertCleanFailure(result, mentions: ["mpirun -np 2", "--simulate"])
            report("\(ranks) rank(s) for the split model", "mpirun -np \(ranks) alexnet-split train", result)
        }
    }

    // MARK: the run itself

    /// SIGTERM to every rank, as a batch scheduler sends it (Slurm's scancel): the ranks agree on
    /// a step boundary, write a checkpoint, say how to resume, and exit.
    ///
    /// (Ctrl-C or SIGTERM to mpirun itself is passed on to the ranks the same way; that was checked
    /// by hand, because mpirun holds back its ranks' output when it writes to a pipe, so a test
    /// cannot see when training is under way.)
    func testSIGTERMToTheRanksStopsAtAStepAndCheckpoints() throws {
        let run = base + "/run"
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--epochs", "300", "--train-limit", "6400",
                                                      "--test-limit", "32", "--batch-size", "32", "--log-every", "100000", "--run-dir", run],
                                           timeout: 90, interrupt: (0, { _ in
            // Once a checkpoint is on disk, the run is well under way.
            guard FileManager.default.fileExists(atPath: run + "/checkpoints") else { return false }
            for rank in CheckpointCommandTests.ranks(marker: run) { kill(rank.pid, SIGTERM) }
            return true
        }))
        XCTAssertFalse(result.timedOut)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("To continue: alexnet-split train --resume \(run)"), result.output)
        let resumed = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--resume", run, "--epochs", "3"], timeout: 60)
        XCTAssertEqual(resumed.status, 0, resumed.error)
        report("SIGTERM to the ranks (a scheduler's cancel), or Ctrl-C", "kill -TERM <ranks>", result,
               "stopped at the next step boundary, wrote a checkpoint, printed the --resume command; the resume completed")
    }

    /// SIGTERM to mpirun itself: mpirun passes it on, and the ranks stop as above.
    func testSIGTERMToMpirunStopsAtAStepAndCheckpoints() throws {
        let run = base + "/run"
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--epochs", "300", "--train-limit", "6400",
                                                      "--test-limit", "32", "--batch-size", "32", "--log-every", "100000", "--run-dir", run],
                                           timeout: 90, interrupt: (SIGTERM, { _ in FileManager.default.fileExists(atPath: run + "/checkpoints") }))
        XCTAssertFalse(result.timedOut)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("To continue: alexnet-split train --resume \(run)"), result.output)
        report("SIGTERM to mpirun", "kill -TERM <mpirun>", result,
               "mpirun passed it on; the ranks stopped at the next step boundary, wrote a checkpoint and printed the --resume command")
    }

    func testDivergingLossKeepsTheLastGoodCheckpoint() throws {
        let run = base + "/run"
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--epochs", "3", "--train-limit", "640", "--test-limit", "32",
                                                      "--batch-size", "32", "--checkpoint-every", "1", "--lr", "1e6", "--run-dir", run], timeout: 60)
        assertCleanFailure(result, mentions: ["loss became", "at step", "--lr"])
        XCTAssertEqual(result.status, 3)
        let check = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--test-limit", "8"], timeout: 60)
        XCTAssertEqual(check.status, 0, "the newest checkpoint is whole: \(check.error)")
        report("loss becomes NaN or infinite", "mpirun -np 2 alexnet-split train --lr 1e6", result, "checkpoints kept and valid")
    }

    func testFullDiskDuringACheckpointKeepsThePreviousOne() throws {
        let mount = base + "/small-disk"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        // 20 MB: room for the small model's first checkpoint (2 x 7.2 MB), not for a second beside it.
        let mounted = try CommandRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=20m", "tmpfs", mount], timeout: 20)
        guard mounted.status == 0 else {
            XCTFail("this test mounts a tmpfs, which needs root: \(mounted.error)")
            return
        }
        defer { _ = try? CommandRunner.run("/bin/umount", [mount], timeout: 20) }
        let run = mount + "/run"
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "small", "--epochs", "1", "--train-limit", "512", "--test-limit", "16",
                                                      "--batch-size", "32", "--checkpoint-every", "2", "--max-steps", "6", "--run-dir", run], timeout: 120)
        XCTAssertFalse(result.timedOut)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains("No space left on device") || result.error.contains("space"), result.error)
        XCTAssertTrue(result.error.contains("previous checkpoint is kept"), result.error)
        let steps = try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").sorted()
        XCTAssertEqual(steps, ["step-0000002"], "the failed checkpoint leaves nothing behind")
        let left = try FileManager.default.subpathsOfDirectory(atPath: run).filter { $0.contains(".tmp-") }
        XCTAssertEqual(left, [])
        let check = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--test-limit", "8"], timeout: 60)
        XCTAssertEqual(check.status, 0, check.error)
        report("disk fills during a checkpoint", "train --run-dir <20 MB tmpfs> --checkpoint-every 2", result, "the previous checkpoint survives and loads")
    }

    func testChangedCheckpointIsRefused() throws {
        let run = base + "/run"
        let train = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--epochs", "2", "--train-limit", "64",
                                               "--test-limit", "8", "--batch-size", "16", "--run-dir", run], timeout: 60)
        XCTAssertEqual(train.status, 0, train.error)
        for step in ["step-0000004", "step-0000008"] {
            let file = "\(run)/checkpoints/\(step)/tower0.safetensors"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            bytes[bytes.count - 3] ^= 1
            try bytes.write(to: URL(fileURLWithPath: file))
        }
        let result = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "tiny", "--resume", run, "--epochs", "3"], timeout: 60)
        assertCleanFailure(result, mentions: ["checksum", "tower0.safetensors"])
        report("a checkpoint file changed on disk", "flip a byte, then train --resume RUN", result, "refused")
    }
}
