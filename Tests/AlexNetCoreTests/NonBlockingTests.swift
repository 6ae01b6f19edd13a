import AlexNetComm
import AlexNetCore
import XCTest

/// The in-process twin of MPI's non-blocking broadcast and scatter: the data arrives by the
/// time a request finishes, blocking collectives may run while it is in flight, and the root's
/// request does not finish before every other rank has its copy.
final class NonBlockingTests: XCTestCase {
    func testBroadcastArrivesWhileOtherCollectivesRun() {
        let size = 3
        let results = Collected<[UInt8]>(size)
        InProcessGroup(size: size).run { c in
            var bytes: [UInt8] = c.rank == 2 ? Array(0..<200) : Array(repeating: 0, count: 200)
            bytes.withUnsafeMutableBytes { buffer in
                let request = c.startBroadcast(buffer, root: 2)
                // A blocking collective between the start and the wait, as a step's all-gathers are.
                var all = [Float](repeating: 0, count: size)
                c.allGather([Float(c.rank)], count: 1, into: &all)
                XCTAssertEqual(all, [0, 1, 2])
                _ = request.test()
                request.wait()
            }
            results.set(c.rank, bytes)
        }
        for r in 0..<size { XCTAssertEqual(results[r], Array(0..<200), "rank \(r)") }
    }

    func testScatterGivesEachRankItsBlock() {
        let counts = [2, 3, 0, 4]
        let results = Collected<[UInt8]>(counts.count)
        InProcessGroup(size: counts.count).run { c in
            let send: [UInt8] = c.rank == 1 ? Array(10..<19) : []
            var receive = [UInt8](repeating: 0, count: counts[c.rank])
            send.withUnsafeBytes { s in
                receive.withUnsafeMutableBytes { r in c.startScatter(s, counts: counts, into: r, root: 1).wait() }
            }
            results.set(c.rank, receive)
        }
        XCTAssertEqual(results[0], [10, 11])
        XCTAssertEqual(results[1], [12, 13, 14])
        XCTAssertEqual(results[2], [])
        XCTAssertEqual(results[3], [15, 16, 17, 18])
    }

    /// The root may reuse its buffer once its request has finished, so it must not finish
    /// before the receiver has copied.
    func testRootFinishesOnlyWhenTheOthersHaveCopied() {
        let rootBefore = Collected<Bool>(1), rootAfter = Collected<Bool>(1), received = Collected<[UInt8]>(1)
        InProcessGroup(size: 2).run { c in
            var bytes: [UInt8] = c.rank == 0 ? [1, 2, 3] : [0, 0, 0]
            bytes.withUnsafeMutableBytes { buffer in
                let request = c.startBroadcast(buffer, root: 0)
                c.barrier()
                if c.rank == 0 { rootBefore.set(0, request.test()) }
                c.barrier()
                if c.rank == 1 { request.wait() }
                c.barrier()
                if c.rank == 0 {
                    rootAfter.set(0, request.test())
                    request.wait()
                }
            }
            if c.rank == 1 { received.set(0, bytes) }
        }
        XCTAssertEqual(rootBefore[0], false, "the root finished before the other rank copied")
        XCTAssertEqual(rootAfter[0], true)
        XCTAssertEqual(received[0], [1, 2, 3])
    }

    /// Through TimedCommunicator, the non-blocking collectives count the bytes each rank receives.
    func testTimedCommunicatorCountsNonBlockingBytes() {
        let counted = Collected<[String: Int]>(2)
        InProcessGroup(size: 2).run { c in
            let timed = TimedCommunicator(c)
            var bytes = [UInt8](repeating: 0, count: 64)
            bytes.withUnsafeMutableBytes { timed.startBroadcast($0, root: 0).wait() }
            counted.set(c.rank, timed.bytes)
        }
        XCTAssertEqual(counted[0]?["broadcast", default: 0], 0)
        XCTAssertEqual(counted[1]?["broadcast"], 64)
    }
}

/// One value per rank, set from the ranks' threads.
private final class Collected<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [T?]
    init(_ count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.withLock { values[index] = value } }
    subscript(index: Int) -> T? { lock.withLock { values[index] } }
}
