import Foundation
import XCTest

/// `scripts/test-summary`, the part of `scripts/test` that reads the test log: a process that
/// died in a test case names it, counts it as failed and fails the run; the closing line counts
/// the cases of the log, never XCTest's partial summary.
final class TestSummaryTests: XCTestCase {
    var folder = ""
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/test-summary").path

    override func setUp() {
        folder = NSTemporaryDirectory() + "test-summary-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func started(_ name: String) -> String { "Test Case '\(name)' started at 2026-12-07 22:00:00.000" }
    func ended(_ name: String, _ how: String) -> String { "Test Case '\(name)' \(how) (0.010 seconds)" }

    /// Runs the script on `lines` as the log and `status` as swift test's exit status.
    func summarise(_ lines: [String], status: Int, failedOnly: Bool = false) throws -> CommandResult {
        let log = "\(folder)/log"
        try (lines.joined(separator: "\n") + "\n").write(toFile: log, atomically: true, encoding: .utf8)
        return try CommandRunner.run("/bin/bash", [script] + (failedOnly ? ["--failed"] : []) + [log, "\(status)"])
    }

    func lastLine(_ result: CommandResult) -> String {
        result.output.split(separator: "\n").last.map(String.init) ?? ""
    }

    func testACrashNamesTheCaseItDiedInAndCountsItAsFailed() throws {
        let log = [
            "Test Suite 'HandOutTests' started at 2026-12-07 22:00:00.000",
            started("A.testOne"), ended("A.testOne", "passed"),
            started("A.testTwo"), ended("A.testTwo", "passed"),
            "\t Executed 2 tests, with 0 failures (0 unexpected) in 0.1 (0.1) seconds",
            started("HandOutTests.testTowerBatches"),
            "Fatal error: Attempted to read an unowned reference but object 0x55954eb56ed0 was already destroyed",
            "error: Exited with unexpected signal code 6",
        ]
        let result = try summarise(log, status: 1)
        XCTAssertNotEqual(result.status, 0, "a crash fails the run")
        XCTAssertTrue(result.output.contains("died (unexpected signal code 6) while running HandOutTests.testTowerBatches"), result.output)
        XCTAssertTrue(result.output.contains("Fatal error: Attempted to read an unowned reference"), result.output)
        XCTAssertEqual(lastLine(result), "tests: 2 passed, 1 failed", "counted from the cases, not from the partial summary")
        let failed = try summarise(log, status: 1, failedOnly: true)
        XCTAssertEqual(failed.output, "HandOutTests.testTowerBatches\n")
    }

    func testFailuresAndSkipsAreCountedFromTheCases() throws {
        let log = [
            started("A.testOne"), "/x/A.swift:3: error: A.testOne : XCTAssertEqual failed", ended("A.testOne", "failed"),
            started("A.testTwo"), ended("A.testTwo", "skipped"),
            started("B.testThree"), ended("B.testThree", "passed"),
            "\t Executed 3 tests, with 1 failure (0 unexpected) in 0.1 (0.1) seconds",
        ]
        let result = try summarise(log, status: 1)
        XCTAssertEqual(result.status, 1)
        XCTAssertFalse(result.output.contains("died"), result.output)
        XCTAssertEqual(lastLine(result), "tests: 2 passed, 1 failed")
        XCTAssertEqual(try summarise(log, status: 1, failedOnly: true).output, "A.testOne\n")
    }

    func testAPassingRunPassesAndAnExitOutsideEveryCaseFails() throws {
        let log = [started("A.testOne"), ended("A.testOne", "passed"), started("A.testTwo"), ended("A.testTwo", "passed")]
        let passing = try summarise(log, status: 0)
        XCTAssertEqual(passing.status, 0, passing.output)
        XCTAssertEqual(lastLine(passing), "tests: 2 passed, 0 failed")
        let dying = try summarise(log + ["error: Exited with unexpected signal code 11"], status: 1)
        XCTAssertEqual(dying.status, 1)
        XCTAssertTrue(dying.output.contains("outside any test case"), dying.output)
        XCTAssertEqual(lastLine(dying), "tests: 2 passed, 1 failed")
    }

    func testALogWithNoTestFails() throws {
        let result = try summarise(["error: no tests found; create a target in the 'Tests' directory"], status: 0)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("no test ran"), result.output)
        XCTAssertEqual(lastLine(result), "tests: 0 passed, 1 failed")
    }
}
