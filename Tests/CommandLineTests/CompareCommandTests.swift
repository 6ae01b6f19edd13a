import Foundation
import XCTest

final class CompareCommandTests: XCTestCase {
    /// Ctrl-C during the second model keeps the first model's row and names what did not finish.
    func testCtrlCKeepsWhatFinished() throws {
        let directory = NSTemporaryDirectory() + "compare-interrupt-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try CommandRunner.alexnet(
            ["compare", "--simulate", "--preset", "tiny", "--epochs", "40", "--train-limit", "640", "--test-limit", "32",
             "--batch-size", "32", "--log-every", "100000", "--run-dir", directory],
            timeout: 120, interrupt: (SIGINT, { $0.contains("== unsplit") }))
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.status, 130, result.output + result.error)
        XCTAssertTrue(result.output.contains("not finished: unsplit seed 1, paper-1gpu seed 1"), result.output)
        let markdown = try String(contentsOfFile: directory + "/compare.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("| split |"), markdown)
        XCTAssertFalse(markdown.contains("| unsplit |"), markdown)
        XCTAssertTrue(markdown.contains("Not finished"), markdown)
    }

    func testCompareRefusesAModel() throws {
        let result = try CommandRunner.alexnet(["compare", "--model", "unsplit"], timeout: 30)
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.error.contains("leave out --model"), result.error)
    }
}
