import AlexNetData
import Foundation
import Synchronization
import XCTest

/// `prepare`, shard sets and label files through the real binary: the output folder guarded as a
/// run folder, empty test data refused, every option's range and every message's fix
/// (docs/reliability.md, "Shard sets and label files").
extension ReliabilityTests {
    /// `base/<name>/{train,val}/{a,b}/` of `perClass` small PNGs (2 in val), their pixels set by `tint`.
    func smallPhotoFolder(_ name: String, perClass: Int = 4, tint: Int = 0) throws -> String {
        let folder = "\(base)/\(name)"
        for split in ["train", "val"] {
            for (label, cls) in ["a", "b"].enumerated() {
                try FileManager.default.createDirectory(atPath: "\(folder)/\(split)/\(cls)", withIntermediateDirectories: true)
                for i in 0..<(split == "train" ? perClass : 2) {
                    let pixels = (0..<(20 * 18 * 3)).map { UInt8(truncatingIfNeeded: $0 * (label + 2) + i * 13 + tint * 57) }
                    try ImageEncoder.writePNG(pixels, width: 20, height: 18, channels: 3, to: "\(folder)/\(split)/\(cls)/\(i).png")
                }
            }
        }
        return folder
    }

    func prepareCommand(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.alexnet(["prepare"] + arguments, timeout: 120)
    }

    func testTwoPreparesIntoOneFolderNeverBothSucceed() throws {
        let sources = [try smallPhotoFolder("one", perClass: 60, tint: 1), try smallPhotoFolder("two", perClass: 60, tint: 2)]
        for attempt in 0..<3 {
            let output = "\(base)/shared-\(attempt)"
            let results = Mutex([CommandResult?](repeating: nil, count: 2))
            DispatchQueue.concurrentPerform(iterations: 2) { k in
                let result = try? CommandRunner.alexnet(["prepare", sources[k], output, "--image-size", "16", "--shard-size", "8", "--threads", "1"])
                results.withLock { $0[k] = result }
            }
            let (first, second) = (try XCTUnwrap(results.withLock { $0[0] }), try XCTUnwrap(results.withLock { $0[1] }))
            XCTAssertFalse(first.status == 0 && second.status == 0, "both prepares into \(output) succeeded: \(first.output) / \(second.output)")
            for (k, result) in [first, second].enumerated() where result.status != 0 {
                assertOneLineError(result, mentions: [output])
                XCTAssertTrue(result.error.contains("in use by another job") || result.error.contains("holds another data set"), result.error)
                if let winner = [first, second].firstIndex(where: { $0.status == 0 }) {
                    // The folder holds the winner's photos, whole.
                    let set = try ShardSet(directory: output)
                    XCTAssertEqual(set.train.count, 120)
                    let index = try XCTUnwrap(FileManager.default.contents(atPath: "\(output)/train-00000.index"))
                    XCTAssertTrue(String(decoding: index, as: UTF8.self).contains(sources[winner] + "/train/"), "set of source \(winner), loser \(k)")
                }
                if attempt == 0 { report("two prepares into one folder at once", "alexnet-split prepare A OUT & alexnet-split prepare B OUT", result) }
            }
        }
    }

    func testPrepareRefusesAnOutputInsideItsSourceBeforeWritingAnything() throws {
        let source = try smallPhotoFolder("photos")
        try FileManager.default.createSymbolicLink(atPath: "\(base)/link", withDestinationPath: "\(source)/train")
        let before = snapshot(source)
        for output in ["\(source)/shards", "\(base)/link/a/shards"] {
            let result = try prepareCommand([source, output, "--image-size", "16"])
            assertCleanFailure(result, mentions: ["lies inside", "outside the source"])
            XCTAssertEqual(result.status, 1)
            XCTAssertEqual(snapshot(source), before, "nothing written into the source")
            if output.contains("link") { report("prepare's output inside its source through a symlink", "alexnet-split prepare SRC LINK-INTO-SRC/out", result) }
        }
    }

    func testPrepareAndTheLabelFilesAnswerEveryMistakeWithItsFix() throws {
        let source = try smallPhotoFolder("photos")
        let fifo = "\(base)/labels.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let cases: [(String, [String], Int32, [String], [String])] = [
            ("prepare's missing source", ["\(base)/absent", "\(base)/out"], 1, ["no folder of photos at", "absent"], ["--data", "fashion"]),
            ("a folder as a label file", [source, "\(base)/out", "--val-labels", base], 1, ["not a regular file"], ["permissions"]),
            ("a FIFO as a label file", [source, "\(base)/out", "--val-labels", fifo], 1, ["labels.fifo", "not a regular file"], ["permissions"]),
            ("prepare --threads -1", [source, "\(base)/out", "--threads", "-1"], 64, ["--threads must be from 1"], ["Missing value"]),
            ("prepare --shard-size -5", [source, "\(base)/out", "--shard-size", "-5"], 64, ["--shard-size must be from 1"], ["Missing value"]),
            ("prepare --quality -1", [source, "\(base)/out", "--quality", "-1"], 64, ["--quality must be between 1 and 100"], ["Missing value"]),
            ("prepare --image-size -8", [source, "\(base)/out", "--image-size", "-8"], 64, ["--image-size must be between"], ["Missing value"]),
            ("prepare --val-fraction -0.1", [source, "\(base)/out", "--val-fraction", "-0.1"], 64, ["--val-fraction must be between 0 and 1"], ["Missing value"]),
            ("prepare --seed -1", [source, "\(base)/out", "--seed", "-1"], 64, ["--seed must be a whole number"], ["Missing value"]),
        ]
        for (name, arguments, code, words, absent) in cases {
            let result = try prepareCommand(arguments)
            assertCleanFailure(result, mentions: words)
            XCTAssertEqual(result.status, code, "\(name): \(result.error)")
            for word in absent { XCTAssertFalse(result.error.contains(word), "\(name) should not offer \(word): \(result.error)") }
            report(name, "alexnet-split prepare " + arguments.map { $0.replacingOccurrences(of: base, with: "…") }.joined(separator: " "), result)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(base)/out"), "no refused prepare made its output")
        // A name that is not UTF-8, given on the command line: named as it is, not "no such file".
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$0\" prepare \"$1\" \"$2\" --val-labels \"$(printf '\(base)/labels-\\351.csv')\"", CommandRunner.executable, source, "\(base)/out"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 1, message)
        XCTAssertTrue(message.contains("not valid UTF-8") && message.contains("labels-\\xe9.csv") && !message.contains("No such file"), message)
    }

    func testBucketSizesAreReportedAsGiven() throws {
        for (value, shown) in [("-1", "-1.0"), ("nan", "nan"), ("inf", "inf"), ("1e-9", "1e-09")] {
            let result = try CommandRunner.alexnet(["train", "--preset", "tiny", "--bucket-mib", value], timeout: 30)
            assertCleanFailure(result, mentions: ["--bucket-mib must be from 0.0001", "(got \(shown))"])
            XCTAssertEqual(result.status, 64)
            if value == "nan" { report("--bucket-mib nan", "alexnet-split train --bucket-mib nan", result) }
        }
    }

    /// `dataset.json` of `set` with `edit` applied, sealed again as a careful forger would.
    func forgeManifest(_ set: String, _ edit: (inout ShardManifest) -> Void) throws {
        let path = "\(set)/dataset.json"
        var manifest = try ShardSet(directory: set).manifest
        edit(&manifest)
        try JSONEncoder().encode(try manifest.sealed()).write(to: URL(fileURLWithPath: path))
    }

    func testEmptyTestDataIsRefusedBeforeTrainingOrEvaluating() throws {
        let source = try smallPhotoFolder("photos", perClass: 8)
        let set = "\(base)/set"
        XCTAssertEqual(try prepareCommand([source, set, "--image-size", "17", "--shard-size", "4"]).status, 0)
        let run = "\(base)/run"
        let trained = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--data", set, "--epochs", "1", "--batch-size", "8",
                                                 "--run-dir", run], timeout: 120)
        XCTAssertEqual(trained.status, 0, trained.error)
        try FileManager.default.copyItem(atPath: set, toPath: "\(base)/no-val")
        try forgeManifest("\(base)/no-val") { $0.val = [] }
        let train = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--data", "\(base)/no-val", "--epochs", "1",
                                               "--batch-size", "8", "--run-dir", "\(base)/run-2"], timeout: 120)
        assertCleanFailure(train, mentions: ["no-val", "no images to test on"])
        XCTAssertEqual(train.status, 1)
        XCTAssertFalse(train.output.contains("epoch 1"), "refused before training: \(train.output)")
        report("a shard set with an empty validation part", "alexnet-split train --data SET", train)
        let eval = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--data", "\(base)/no-val"], timeout: 120)
        assertCleanFailure(eval, mentions: ["no images to test on"])
        XCTAssertEqual(eval.status, 1)
        report("eval on a set of 0 test images", "alexnet-split eval --checkpoint RUN --data SET", eval)
        let fine = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--data", set], timeout: 120)
        XCTAssertEqual(fine.status, 0, "the same checkpoint on the whole set: \(fine.error)")
        XCTAssertTrue(fine.output.contains("(4 images"), fine.output)
    }

    func testSizesFromOptionsNeverTrap() throws {
        let cases: [[String]] = [
            ["summary", "--preset", "small", "--batch-size", "9223372036854775807"],
            ["summary", "--preset", "paper", "--traffic", "--batch-size", "9223372036854775804"],
            ["summary", "--preset", "tiny", "--classes", "100000", "--batch-size", "4611686018427387904"],
        ]
        for arguments in cases {
            let result = try CommandRunner.alexnet(arguments, timeout: 60)
            XCTAssertFalse(result.error.contains("Fatal error") || result.error.contains("Stack dump") || result.status > 128, "\(arguments): \(result.error)")
            if result.status != 0 { assertOneLineError(result, mentions: ["--batch-size"]) }
            if arguments.contains("--traffic") { report("summary --traffic with a batch near Int.max", "alexnet-split " + arguments.joined(separator: " "), result) }
        }
        // A batch far above the data: the hand-out is sized by what the step can hold, not by the option.
        let huge = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--batch-size", "100000000", "--train-limit", "64",
                                              "--test-limit", "8", "--epochs", "1", "--run-dir", base + "/huge-batch"], timeout: 120)
        XCTAssertEqual(huge.status, 0, huge.error)
        report("--batch-size 100000000 on 64 images", "alexnet-split train --batch-size 100000000 --train-limit 64", huge, "trains: one step of the 64 images per epoch")
    }

    func testPrepareAdmitsItsMemoryAndAnExtremeAspectRatioCostsOnlyItsSquare() throws {
        let source = try smallPhotoFolder("photos")
        // Two threads' shards of 1024 raw squares at S = 256 take about 400 MB: not under 300 MiB.
        let refused = try CommandRunner.alexnet(["prepare", source, "\(base)/out", "--raw", "--threads", "2"], timeout: 60,
                                                environment: ["ALEXNET_SPLIT_MEMORY_LIMIT": "300M"])
        assertCleanFailure(refused, mentions: ["2 thread(s)", "ALEXNET_SPLIT_MEMORY_LIMIT=300M", "fewer --threads or a smaller --shard-size"])
        XCTAssertEqual(refused.status, 5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(base)/out"))
        report("prepare that does not fit in memory", "ALEXNET_SPLIT_MEMORY_LIMIT=300M alexnet-split prepare SRC OUT --raw --threads 2", refused)
        // A 65536 x 1 PNG scaled at S = 256 (16.7 million columns before the crop) costs its square.
        try ImageEncoder.writePNG((0..<(65536 * 3)).map { UInt8(truncatingIfNeeded: $0) }, width: 65536, height: 1, channels: 3,
                                  to: "\(source)/train/a/wide.png")
        let timed = try CommandRunner.run("/usr/bin/time", ["-f", "peak %M KB", CommandRunner.executable, "prepare", source, "\(base)/wide", "--threads", "1"], timeout: 120)
        XCTAssertEqual(timed.status, 0, timed.error)
        let peak = try XCTUnwrap(timed.error.split(separator: "\n").last { $0.hasPrefix("peak ") }.flatMap { Int($0.split(separator: " ")[1]) })
        XCTAssertLessThan(peak, 400_000, "prepare with a 65536 x 1 photo peaked at \(peak) KB")
        report("a 65536 x 1 PNG at S = 256", "alexnet-split prepare SRC OUT (one photo of 65536 x 1)", timed, "exit 0; peak resident \(peak / 1024) MiB")
    }
}
