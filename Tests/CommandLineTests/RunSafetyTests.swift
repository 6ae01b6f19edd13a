import AlexNetData
import Foundation
import Synchronization
import XCTest

/// Options, runs, concurrency, signals and memory: one test per class of case, each asserting
/// the exit code, the one error line, and that files written before are untouched
/// (docs/reliability.md lists them).
extension ReliabilityTests {
    /// A quick tiny run in `run`: 64 images, batch 16, one epoch (4 steps, a checkpoint at the end).
    static func tinyRun(_ run: String, _ extra: [String] = []) throws -> CommandResult {
        try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--epochs", "1", "--train-limit", "64", "--test-limit", "8",
                                   "--batch-size", "16", "--run-dir", run] + extra, timeout: 60)
    }

    /// Every file under `folder` with its bytes, to show that nothing changed.
    func snapshot(_ folder: String) -> [String: Data] {
        let paths = (try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? []
        var files: [String: Data] = [:]
        for path in paths { files[path] = FileManager.default.contents(atPath: "\(folder)/\(path)") }
        return files
    }

    func assertRefused(_ result: CommandResult, code: Int32, mentions words: [String], within seconds: Double? = nil, started: Date = Date(),
                       file: StaticString = #filePath, line: UInt = #line) {
        assertCleanFailure(result, mentions: words, file: file, line: line)
        XCTAssertEqual(result.status, code, result.error, file: file, line: line)
        if let seconds { XCTAssertLessThan(Date().timeIntervalSince(started), seconds, "refused at once", file: file, line: line) }
    }

    // MARK: options

    func testOptionValuesAreCheckedBeforeAnythingStarts() throws {
        let earlier = base + "/earlier"
        XCTAssertEqual(try Self.tinyRun(earlier).status, 0)
        let before = snapshot(base)
        let cases: [(String, [String], Int32, [String])] = [
            ("negative learning rate", ["--lr", "-1"], 64, ["--lr must be a positive number"]),
            ("negative batch size", ["--batch-size", "-1"], 64, ["--batch-size must be at least 1"]),
            ("negative seed", ["--seed", "-1"], 64, ["--seed must be a whole number"]),
            ("10^11 epochs", ["--epochs", "100000000000"], 64, ["--epochs must be at most 1000000"]),
            ("huge image size", ["--image-size", "100000"], 64, ["--image-size must be"]),
            ("64 simulated replicas", ["--simulate", "--replicas", "64"], 64, ["at most 32 replicas", "mpirun -np 128"]),
            ("a collective timeout past the watchdog's clock", ["--collective-timeout", "1e20"], 64, ["--collective-timeout must be"]),
            ("--image-size on IDX data", ["--simulate", "--image-size", "64", "--run-dir", base + "/idx"], 1, ["--image-size", "resized whole", "--preprocess paper"]),
        ]
        for (name, arguments, code, words) in cases {
            let started = Date()
            let result = try CommandRunner.alexnet(["train", "--preset", "tiny"] + arguments, timeout: 30)
            assertRefused(result, code: code, mentions: words, within: 20, started: started)
            XCTAssertFalse(result.error.contains("Missing value"), result.error)
            report(name, "alexnet-split train " + arguments.joined(separator: " "), result)
        }
        XCTAssertEqual(snapshot(earlier), before.filter { $0.key.hasPrefix("earlier") }.reduce(into: [:]) { $0[String($1.key.dropFirst(8))] = $1.value })
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/idx"), "a refused start leaves no run folder")
    }

    func testRuntimeFailuresExitOneWithoutPointingAtHelp() throws {
        let out = base + "/model.safetensors"
        let missing = try CommandRunner.alexnet(["export", "--checkpoint", base + "/absent", "--out", out], timeout: 30)
        assertRefused(missing, code: 1, mentions: ["absent", "run directory"])
        XCTAssertFalse(missing.error.contains("--help"), missing.error)
        report("export of a missing checkpoint", "alexnet-split export --checkpoint ABSENT --out F", missing)
        let bench = try CommandRunner.alexnet(["bench", "--simulate", "--preset", "paper", "--batch-size", "100000000"], timeout: 30)
        assertRefused(bench, code: 5, mentions: ["needs about", "largest --batch-size that fits"])
        XCTAssertFalse(bench.error.contains("--help"), bench.error)
        report("bench that cannot fit in memory", "alexnet-split bench --preset paper --batch-size 100000000", bench)
        let run = base + "/run"
        XCTAssertEqual(try Self.tinyRun(run).status, 0)
        let evaluation = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--batch-size", "100000000"], timeout: 30)
        assertRefused(evaluation, code: 5, mentions: ["tiny/split at --batch-size 100000000 needs about", "largest --batch-size that fits"])
        report("eval that cannot fit in memory", "alexnet-split eval --checkpoint RUN --batch-size 100000000", evaluation)
    }

    // MARK: runs

    func testARunIsNeverReplacedOrMixed() throws {
        let run = base + "/run"
        XCTAssertEqual(try Self.tinyRun(run).status, 0)
        let weights = base + "/weights"
        _ = FileManager.default.createFile(atPath: weights + "-tower0.safetensors", contents: Data("keep me".utf8))
        let before = snapshot(base)
        let cases: [(String, [String], [String])] = [
            ("train into a folder that holds a run", ["--run-dir", run], ["already holds a run", "--resume \(run)", "--run-dir"]),
            ("--dump-weights onto an existing file", ["--run-dir", base + "/new1", "--dump-weights", weights], ["already exists", "--force"]),
            ("--dump-weights to an unwritable folder", ["--run-dir", base + "/new2", "--no-checkpoints", "--dump-weights", "/proc/none/w"], ["/proc/none", "writable"]),
        ]
        for (name, arguments, words) in cases {
            let started = Date()
            let result = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--epochs", "1", "--train-limit", "64",
                                                    "--test-limit", "8", "--batch-size", "16"] + arguments, timeout: 60)
            assertRefused(result, code: 1, mentions: words, within: 20, started: started)
            XCTAssertFalse(result.output.contains("epoch 1/1 done"), "refused before training: \(result.output)")
            report(name, "alexnet-split train " + arguments.joined(separator: " ").replacingOccurrences(of: base, with: "…"), result)
        }
        let export = try CommandRunner.alexnet(["export", "--checkpoint", run, "--out", weights + "-tower0.safetensors"], timeout: 30)
        assertRefused(export, code: 1, mentions: ["already exists", "--force"])
        report("export --out onto an existing file", "alexnet-split export --out EXISTING", export)
        XCTAssertEqual(snapshot(base).filter { !$0.key.hasPrefix("new") }, before, "no earlier file changed")
        let forced = try CommandRunner.alexnet(["export", "--checkpoint", run, "--out", weights + "-tower0.safetensors", "--force"], timeout: 30)
        XCTAssertEqual(forced.status, 0, forced.error)
        XCTAssertNotEqual(FileManager.default.contents(atPath: weights + "-tower0.safetensors"), Data("keep me".utf8), "--force replaces")
        let config = try JSONSerialization.jsonObject(with: XCTUnwrap(FileManager.default.contents(atPath: run + "/config.json"))) as? [String: Any]
        XCTAssertEqual(config?["batch_size"] as? Int, 16, "config.json is JSON")
    }

    func testTwoJobsStartedAtOnceOnOneFolder() throws {
        let run = base + "/shared"
        let results = ResultBox()
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            if let result = try? Self.tinyRun(run, ["--epochs", "2"]) { results.append(result) }
        }
        let all = results.all
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(all.filter { $0.status == 0 }.count, 1, "exactly one job runs: \(all.map(\.error))")
        guard let refused = all.first(where: { $0.status != 0 }) else { return }
        assertOneLineError(refused, mentions: [run])
        XCTAssertTrue(refused.error.contains("in use by another job") || refused.error.contains("already holds a run"), refused.error)
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").filter { $0.contains("\"kind\":\"epoch\"") }.count, 2, "one run's two epochs, not two runs mixed")
        report("two trainings started at once into one folder", "train --run-dir D & train --run-dir D", refused, "one trains, the other is refused")
    }

    // MARK: resume

    func testResumeOptionsTakeEffectOrAreRefused() throws {
        let run = base + "/run"
        XCTAssertEqual(try Self.tinyRun(run, ["--lr", "0.02"]).status, 0)
        let before = snapshot(run)
        let refused = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--resume", run, "--lr", "0.5", "--batch-size", "64"], timeout: 60)
        assertRefused(refused, code: 64, mentions: ["--lr 0.5", "0.02", "--batch-size 64", "16", "new --run-dir"])
        XCTAssertEqual(snapshot(run), before, "a refused resume changes nothing")
        report("--resume with a different --lr and --batch-size", "train --resume RUN --lr 0.5 --batch-size 64", refused)
        // Options that may change take effect; the values printed are the ones the run uses.
        let resumed = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--resume", run, "--epochs", "2", "--log-every", "1",
                                                 "--lr", "0.02"], timeout: 60)
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.output.contains("batch 16, lr 0.02"), resumed.output)
        XCTAssertTrue(resumed.output.contains("epoch 2/2 done"), resumed.output)
        XCTAssertTrue(resumed.output.contains("epoch 2/2  step    4/4"), "--log-every 1 took effect: \(resumed.output)")
    }

    /// Options that change no bit (`RunConfiguration`'s "changes no bit") are taken on --resume,
    /// and the resumed run ends with the weights of one that never stopped.
    func testResumeTakesTheOptionsThatChangeNoBit() throws {
        let (whole, stopped) = (base + "/whole", base + "/stopped")
        let tiny = ["train", "--simulate", "--preset", "tiny", "--train-limit", "64", "--test-limit", "8", "--batch-size", "16"]
        let uninterrupted = try CommandRunner.alexnet(tiny + ["--epochs", "2", "--run-dir", whole, "--dump-weights", whole + "/w"], timeout: 60)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.error)
        XCTAssertEqual(try Self.tinyRun(stopped).status, 0)
        let resumed = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--resume", stopped, "--epochs", "2",
                                                 "--bucket-mib", "8", "--progress", "thread", "--dump-weights", stopped + "/w"], timeout: 60)
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.output.contains("epoch 2/2 done"), resumed.output)
        try assertSameTowerWeights(whole + "/w", stopped + "/w", "a run resumed with --bucket-mib 8 --progress thread and one that never stopped")
        report("--resume with --bucket-mib and --progress", "train --resume RUN --bucket-mib 8 --progress thread", resumed,
               "taken: they change no bit")
    }

    /// `mpirun -np 2 ... --simulate` would start two whole simulations: refused on every rank with
    /// one line (rank 0's) saying what to run instead, before anything is written.
    func testSimulateUnderAnMPIRunOfSeveralProcessesIsRefused() throws {
        for arguments in [["train", "--simulate", "--preset", "tiny", "--run-dir", base + "/run"],
                          ["eval", "--simulate", "--checkpoint", base + "/run"]] {
            let result = try CommandRunner.mpi(ranks: 2, arguments, timeout: 60)
            assertRefused(result, code: 64, mentions: ["--simulate", "mpirun started 2 processes", "without mpirun", "leave out --simulate"])
            report("--simulate under mpirun -np 2", "mpirun -np 2 alexnet-split \(arguments[0]) --simulate", result)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: base + "/run"), "nothing written")
    }

    /// `train --help` shows the settings in their titled groups, in words that fit any data.
    func testTrainHelpShowsTheTitledGroups() throws {
        let help = try CommandRunner.alexnet(["train", "--help"], timeout: 30)
        XCTAssertEqual(help.status, 0, help.error)
        let titles = ["DATA:", "MODEL:", "OPTIMISER AND SCHEDULE:", "RUN AND CHECKPOINTS:", "PARALLELISM AND COMMUNICATION:"]
        let places = titles.map { help.output.range(of: $0)?.lowerBound }
        XCTAssertFalse(places.contains(nil), help.output)
        func entry(_ option: String) -> String.Index { help.output.range(of: "  \(option) <")?.lowerBound ?? help.output.startIndex }
        XCTAssertTrue(entry("--batch-size") > places[2]! && entry("--batch-size") < places[3]!, "--batch-size is under the optimiser")
        XCTAssertTrue(entry("--bucket-mib") > places[4]!, "--bucket-mib is under parallelism")
        XCTAssertTrue(entry("--resume") > places[3]! && entry("--resume") < places[4]!, "--resume is under run and checkpoints")
        XCTAssertFalse(help.output.contains("Fashion-MNIST"), help.output)
    }

    // MARK: signals

    func testSecondInterruptEndsAtOnceNamingTheLastGoodCheckpoint() throws {
        let run = base + "/run"
        // Steps of the small preset at batch 256 take far longer than the 20 ms between the two signals.
        let result = try CommandRunner.alexnet(["train", "--simulate", "--preset", "small", "--epochs", "3", "--train-limit", "6400", "--test-limit", "32",
                                                "--batch-size", "256", "--checkpoint-every", "2", "--log-every", "100000", "--run-dir", run],
                                               timeout: 120, interrupt: (SIGINT, { $0.contains("checkpoint: ") }), signalCount: 2)
        XCTAssertEqual(result.status, 130, result.error)
        assertOneLineError(result, mentions: ["second interrupt", "last good checkpoint", "--resume \(run)"])
        let named = result.error.components(separatedBy: "last good checkpoint is ").last?.components(separatedBy: ":").first ?? ""
        XCTAssertTrue(FileManager.default.fileExists(atPath: named + "/manifest.json"), "the named checkpoint is whole: \(named)")
        let check = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", named, "--test-limit", "8"], timeout: 60)
        XCTAssertEqual(check.status, 0, check.error)
        report("a second Ctrl-C", "kill -INT twice", result, "ends at once (exit 130) naming the last good checkpoint, which loads")
    }

    // MARK: memory

    func testMemoryAdmissionRefusesAtOnceWithTheBatchThatFits() throws {
        let before = snapshot(base)
        for (name, arguments) in [("the paper preset at batch 4096", ["--preset", "paper", "--batch-size", "4096"]),
                                  ("the paper preset at batch 10^8", ["--preset", "paper", "--batch-size", "100000000"])] {
            let started = Date()
            let result = try CommandRunner.alexnet(["train", "--simulate"] + arguments + ["--run-dir", base + "/run"], timeout: 30)
            assertRefused(result, code: 5, mentions: ["needs about", "is available", "the largest --batch-size that fits is", "smaller --preset"],
                          within: 10, started: started)
            report(name, "alexnet-split train " + arguments.joined(separator: " "), result)
        }
        // Under mpirun the ranks agree: one line, every rank gone.
        let mpi = try CommandRunner.mpi(ranks: 2, ["train", "--preset", "paper", "--batch-size", "4096", "--run-dir", base + "/run"], timeout: 60)
        assertCleanFailure(mpi, mentions: ["needs about", "the largest --batch-size that fits is"])
        report("the paper preset at batch 4096 under mpirun", "mpirun -np 2 alexnet-split train --preset paper --batch-size 4096", mpi)
        XCTAssertEqual(snapshot(base), before, "nothing written")
        // Under a 1 GiB limit the small preset at 4096 is refused with a batch that then trains within it.
        let limit = ["ALEXNET_SPLIT_MEMORY_LIMIT": "1G"]
        let refused = try CommandRunner.alexnet(["train", "--simulate", "--preset", "small", "--batch-size", "4096", "--run-dir", base + "/a"],
                                                timeout: 30, environment: limit)
        assertRefused(refused, code: 5, mentions: ["ALEXNET_SPLIT_MEMORY_LIMIT=1G"])
        let fits = try XCTUnwrap(Int(refused.error.components(separatedBy: "fits is ").last?.prefix { $0.isNumber } ?? ""))
        XCTAssertGreaterThan(fits, 16)
        XCTAssertLessThan(fits, 4096)
        let trained = try CommandRunner.alexnet(["train", "--simulate", "--preset", "small", "--batch-size", "\(fits)", "--epochs", "1",
                                                 "--train-limit", "\(fits)", "--test-limit", "16", "--run-dir", base + "/b"], timeout: 120, environment: limit)
        XCTAssertEqual(trained.status, 0, trained.error)
        let (peak, _) = try XCTUnwrap(memoryLine(trained.output))
        XCTAssertLessThan(peak, 1.05 * 1_073_741_824, "the admitted batch runs within the limit: \(trained.output)")
    }

    /// The estimate against the measured peak (VmHWM) for a few configurations: it must neither
    /// fall short of the peak by more than 10% nor exceed it by more than 35% plus 64 MiB.
    func testMemoryEstimateIsWithinItsMarginOfThePeak() throws {
        let configurations = [["--preset", "tiny", "--batch-size", "64"], ["--preset", "small", "--batch-size", "256"],
                              ["--preset", "small", "--model", "unsplit", "--batch-size", "256"],
                              ["--preset", "small", "--replicas", "2", "--batch-size", "256"], ["--preset", "d2l", "--batch-size", "16"],
                              // Winograd's transforms (auto builds both tiles while it times them)
                              ["--preset", "small", "--batch-size", "256", "--conv-algorithm", "auto"],
                              ["--preset", "small", "--batch-size", "256", "--conv-algorithm", "winograd"],
                              ["--preset", "d2l", "--batch-size", "16", "--conv-algorithm", "winograd-4x4"]]
        for (k, configuration) in configurations.enumerated() {
            let result = try CommandRunner.alexnet(["train", "--simulate", "--epochs", "1", "--train-limit", "512", "--test-limit", "16",
                                                    "--max-steps", "2", "--run-dir", "\(base)/m\(k)"] + configuration, timeout: 180)
            XCTAssertEqual(result.status, 0, result.error)
            let (peak, estimate) = try XCTUnwrap(memoryLine(result.output), result.output)
            XCTAssertGreaterThan(estimate, 0.9 * peak, "\(configuration): estimate \(estimate) below the peak \(peak)")
            XCTAssertLessThan(estimate, 1.35 * peak + 64 * 1_048_576, "\(configuration): estimate \(estimate) far above the peak \(peak)")
            report("memory estimate, " + configuration.joined(separator: " "), "train --simulate " + configuration.joined(separator: " "), result,
                   result.output.split(separator: "\n").first { $0.hasPrefix("memory:") }.map(String.init) ?? "")
        }
    }

    /// `memory: peak resident X (VmHWM), estimated Y for this process`, in bytes.
    func memoryLine(_ output: String) -> (peak: Double, estimate: Double)? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("memory: peak resident ") }) else { return nil }
        let units = ["B": 1.0, "KiB": 1024.0, "MiB": 1_048_576.0, "GiB": 1_073_741_824.0]
        let words = line.split(separator: " ").map(String.init)
        let sizes = words.indices.compactMap { i -> Double? in
            guard i + 1 < words.count, let value = Double(words[i]), let unit = units[words[i + 1]] else { return nil }
            return value * unit
        }
        return sizes.count == 2 ? (sizes[0], sizes[1]) : nil
    }
}

private final class ResultBox: Sendable {
    private let results = Mutex<[CommandResult]>([])
    func append(_ result: CommandResult) { results.withLock { $0.append(result) } }
    var all: [CommandResult] { results.withLock { $0 } }
}

extension ReliabilityTests {
    // MARK: disks

    /// metrics.jsonl on a full disk (/dev/full: every write fails with ENOSPC): the run stops at
    /// the next step with one line, and its checkpoints stay whole.
    func testMetricsOnAFullDiskStopTheRunAndKeepItsCheckpoints() throws {
        let run = base + "/run"
        XCTAssertEqual(try Self.tinyRun(run).status, 0)
        try FileManager.default.removeItem(atPath: run + "/metrics.jsonl")
        try FileManager.default.createSymbolicLink(atPath: run + "/metrics.jsonl", withDestinationPath: "/dev/full")
        let result = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--resume", run, "--epochs", "20", "--log-every", "1"],
                                               timeout: 60)
        assertRefused(result, code: 1, mentions: ["metrics.jsonl", "No space left on device", "--resume \(run)"])
        XCTAssertFalse(result.output.contains("epoch 20/20 done"), "stopped early: \(result.output)")
        let check = try CommandRunner.alexnet(["eval", "--simulate", "--checkpoint", run, "--test-limit", "8"], timeout: 60)
        XCTAssertEqual(check.status, 0, "the newest checkpoint is whole: \(check.error)")
        report("metrics.jsonl cannot be written (disk full)", "metrics.jsonl -> /dev/full, train --resume RUN", result,
               "stopped at the next step; the checkpoints load")
    }
}

extension ReliabilityTests {
    /// Class folders named with a quote, a backslash and a newline: config.json and the
    /// checkpoint's manifest stay valid JSON and give the names back as they were.
    func testClassNamesWithQuotesAndNewlinesRoundTripThroughJSON() throws {
        let names = ["say \"hi\"", "back\\slash", "two\nlines", "plain"]
        let data = base + "/awkward"
        for split in ["train", "val"] {
            for (k, name) in names.enumerated() {
                let folder = "\(data)/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<4 {
                    try ImageEncoder.writePNG([UInt8](repeating: UInt8(40 * k + i), count: 12 * 12 * 3), width: 12, height: 12, channels: 3,
                                              to: "\(folder)/\(i).png")
                }
            }
        }
        let run = base + "/run"
        let result = try CommandRunner.alexnet(["train", "--simulate", "--preset", "tiny", "--data", data, "--epochs", "1", "--batch-size", "8",
                                                "--run-dir", run], timeout: 120)
        XCTAssertEqual(result.status, 0, result.error)
        let config = try JSONSerialization.jsonObject(with: XCTUnwrap(FileManager.default.contents(atPath: run + "/config.json"))) as? [String: Any]
        XCTAssertEqual(config?["class_names"] as? [String], names.sorted())
        for line in try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n") {
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(line.utf8)), String(line))
        }
        let exported = try CommandRunner.alexnet(["export", "--checkpoint", run, "--out", base + "/model.safetensors"], timeout: 30)
        XCTAssertEqual(exported.status, 0, exported.error)
    }
}
