import AlexNetComm
import AlexNetCore
import XCTest

/// `agree` on in-process groups: the payload travels, a failure anywhere reaches every rank,
/// and exit codes are max-reduced, never summed.
final class AgreementTests: XCTestCase {
    struct Coded: ExitCoded { var exitCode: Int32 }
    struct Payload: Codable, Equatable { var name: String; var values: [Double] }

    /// Runs `body` on `size` simulated ranks and returns each rank's result, in rank order.
    private func onRanks<T: Sendable>(_ size: Int, _ body: @escaping @Sendable (Communicator) -> T) -> [T] {
        InProcessGroup(size: size).collect(body)
    }

    /// The exit code every rank sees, or 0 when it agreed.
    private static func agreedCode(_ body: () throws -> Void) -> Int32 {
        do { try body() } catch let failure as AgreementFailure { return failure.exitCode } catch { return -1 }
        return 0
    }

    func testPayloadFromTheDecidingRankReachesEveryRank() {
        let sent = Payload(name: "from rank 2", values: [0.1, 1e-300, -3.5, .pi, .infinity, -.infinity])
        let received = onRanks(3) { c in try? c.agree(c.rank == 2 ? .success(sent) : nil, decider: 2) }
        XCTAssertEqual(received, [sent, sent, sent])
        let idle = onRanks(2) { c in try? c.agree(decider: 1, idly: true) { "rank \(c.rank)" } }
        XCTAssertEqual(idle, ["rank 1", "rank 1"])
    }

    func testAFailureOnAnyRankReachesEveryRank() {
        for failing in 0..<3 {
            let codes = onRanks(3) { c in
                Self.agreedCode {
                    _ = try c.agree(c.rank == failing ? .failure(Coded(exitCode: 3)) : .success(7), decider: 0)
                }
            }
            XCTAssertEqual(codes, [3, 3, 3], "rank \(failing) failed")
        }
        // The failing rank keeps its own error, to report it.
        let causes = onRanks(2) { c -> String in
            do { try c.agree(c.rank == 1 ? .failure(Coded(exitCode: 2)) : .success(())) } catch let f as AgreementFailure {
                return f.cause.map { "\($0)" } ?? "none"
            } catch { return "other" }
            return "agreed"
        }
        XCTAssertEqual(causes[0], "none")
        XCTAssertTrue(causes[1].contains("Coded"), causes[1])
    }

    /// Rank 0's 2 and rank 1's 1 must not make a 3 (another failure's code): the maximum is kept.
    func testExitCodesAreNotSummed() {
        let codes = onRanks(2) { c in
            Self.agreedCode { try c.agree(.failure(Coded(exitCode: c.rank == 0 ? 2 : 1))) }
        }
        XCTAssertEqual(codes, [2, 2])
        // An error that names no code counts as 1.
        let plain = onRanks(2) { c in
            Self.agreedCode { try c.agree(c.rank == 1 ? .failure(CocoaError(.fileNoSuchFile)) : .success(())) }
        }
        XCTAssertEqual(plain, [1, 1])
    }

    func testAgreeEachGivesEveryRanksValueInRankOrder() {
        let all = onRanks(3) { c in try? c.agreeEach(.success(c.rank * 10)) }
        XCTAssertEqual(all, [[0, 10, 20], [0, 10, 20], [0, 10, 20]])
        let codes = onRanks(3) { c in
            Self.agreedCode { _ = try c.agreeEach(c.rank == 2 ? .failure(Coded(exitCode: 3)) : .success(c.rank)) }
        }
        XCTAssertEqual(codes, [3, 3, 3])
    }

    func testMaximumIsElementWise() {
        let result = onRanks(3) { c in c.maximum([Int32(c.rank), Int32(-c.rank), 5], idly: c.rank == 1) }
        XCTAssertEqual(result, Array(repeating: [2, 0, 5], count: 3))
    }
}
