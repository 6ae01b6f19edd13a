import AlexNetData
import Foundation
import Synchronization
import XCTest

/// Runs the built `alexnet-split` (or mpirun around it) with a time limit, so that a hang
/// fails the test instead of the whole run.
struct CommandResult {
    var status: Int32
    var output: String
    var error: String
    var timedOut: Bool
}

enum CommandRunner {
    /// The executable built beside this test bundle (or $ALEXNET_SPLIT_BIN).
    static var executable: String {
        if let path = ProcessInfo.processInfo.environment["ALEXNET_SPLIT_BIN"] { return path }
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidate = directory
        // The xctest binary sits in .build/<config>/; walk up until alexnet-split is beside us.
        for _ in 0..<4 {
            let path = candidate.appendingPathComponent("alexnet-split").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
            candidate = candidate.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("alexnet-split").path
    }

    static var mpirun: String? {
        for directory in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: directory + "/mpirun") {
            return directory + "/mpirun"
        }
        return nil
    }

    /// mpirun's arguments for `ranks` ranks of alexnet-split on this machine, as root if need be.
    static func mpiArguments(ranks: Int) -> [String] {
        ["--allow-run-as-root", "--oversubscribe", "-q", "-np", "\(ranks)", "-x", "OPENBLAS_NUM_THREADS=1",
         "-x", "ALEXNET_SPLIT_TESTING=1", executable]
    }

    /// Runs a command; when `interrupt` is given, sends it `signal` once its output so far
    /// satisfies the condition (once).
    static func run(_ launch: String, _ arguments: [String], timeout: TimeInterval = 120,
                    interrupt: (signal: Int32, when: (String) -> Bool)? = nil, environment extra: [String: String] = [:],
                    signalCount: Int = 1) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launch)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["ALEXNET_SPLIT_TESTING"] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment.merge(extra) { $1 }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice  // as in CI; mpirun would otherwise forward ours
        try process.run()
        let outData = PipeReader(out.fileHandleForReading), errData = PipeReader(err.fileHandleForReading)
        let deadline = Date().addingTimeInterval(timeout)
        var interrupted = false
        while process.isRunning && Date() < deadline {
            if let interrupt, !interrupted, interrupt.when(outData.string) {
                // Signal 0: the condition sent its own signals.
                if interrupt.signal != 0 {
                    // Apart by 20 ms: two signals pending at once would merge into one.
                    for k in 0..<signalCount {
                        if k > 0 { usleep(20_000) }
                        kill(process.processIdentifier, interrupt.signal)
                    }
                }
                interrupted = true
            }
            usleep(20_000)
        }
        let timedOut = process.isRunning
        if timedOut {
            kill(-process.processIdentifier, SIGKILL)
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        outData.finish()
        errData.finish()
        return withExtendedLifetime((out, err)) { CommandResult(status: process.terminationStatus, output: outData.string, error: errData.string, timedOut: timedOut) }
    }

    static func alexnet(_ arguments: [String], timeout: TimeInterval = 120,
                        interrupt: (signal: Int32, when: (String) -> Bool)? = nil, environment: [String: String] = [:],
                        signalCount: Int = 1) throws -> CommandResult {
        try run(executable, arguments, timeout: timeout, interrupt: interrupt, environment: environment, signalCount: signalCount)
    }

    static func mpi(ranks: Int, _ arguments: [String], timeout: TimeInterval = 120,
                    interrupt: (signal: Int32, when: (String) -> Bool)? = nil) throws -> CommandResult {
        guard let mpirun else {
            XCTFail("mpirun not found: install openmpi-bin (bash .ci/run does)")
            return CommandResult(status: -1, output: "", error: "", timedOut: false)
        }
        return try run(mpirun, mpiArguments(ranks: ranks) + arguments, timeout: timeout, interrupt: interrupt)
    }
}

/// Reads a pipe to its end on a thread of its own, with blocking reads. (Foundation's
/// `readabilityHandler` on Linux once crashed the whole test process inside libdispatch's event
/// loop; a plain thread has no dispatch source to race with.)
private final class PipeReader: Sendable {
    private let data = Mutex(Data())
    private let ended = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        let descriptor = handle.fileDescriptor
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    data.withLock { $0.append(contentsOf: buffer[0..<count]) }
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            ended.signal()
        }
    }

    /// What has arrived so far.
    var string: String { data.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Waits for the end of the pipe: every writer has closed it once the command has exited,
    /// unless something it started still holds it (then, after 60 s, what has arrived).
    func finish() { _ = ended.wait(timeout: .now() + 60) }
}

/// Helpers that several command-line test classes share.
extension XCTestCase {
    /// `<root>/data/{train,val}/<colour>/` of 40x30 colour JPEGs: class k's mean colour is k steps round
    /// a wheel of hues, with noise over it.
    func writeColourJPEGFolders(classes: Int, train: Int, val: Int, under root: String) throws -> String {
        var state = UInt64(classes)
        func noise() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 58) }
        for (split, count) in [("train", train), ("val", val)] {
            for label in 0..<classes {
                let hue = Double(label) / Double(classes) * 2 * Double.pi
                let tint = (0..<3).map { 120 + Int(90 * cos(hue - Double($0) * 2 * Double.pi / 3)) }
                let folder = "\(root)/data/\(split)/hue\(label)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<count {
                    let pixels = (0..<(40 * 30 * 3)).map { UInt8(tint[$0 % 3] + noise() - 32) }
                    try ImageEncoder.writeJPEG(pixels, width: 40, height: 30, channels: 3, quality: 90, to: "\(folder)/\(i).jpg")
                }
            }
        }
        return "\(root)/data"
    }

    /// A fresh, empty folder under the temporary directory.
    func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The loss fields of a run's metrics.jsonl as written, so that comparisons are of the exact printed doubles.
    func losses(_ directory: String) throws -> [String] {
        let text = try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
        return text.split(separator: "\n").flatMap { line in
            line.split(separator: ",").filter { $0.contains("loss") }.map(String.init)
        }
    }

    /// Both towers' `--dump-weights` files under `prefixA` and `prefixB` are byte for byte the same
    /// (and not trivially small).
    func assertSameTowerWeights(_ prefixA: String, _ prefixB: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for tower in 0..<2 {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(prefixA)-tower\(tower).safetensors"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(prefixB)-tower\(tower).safetensors"))
            XCTAssertGreaterThan(a.count, 1000, file: file, line: line)
            XCTAssertTrue(a == b, "tower \(tower) weights differ: \(what)", file: file, line: line)
        }
    }

    /// A clean failure: not hung, a non-zero exit, exactly one `error:` line mentioning `words`, no trap.
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
}
