import AlexNetCore
import XCTest

/// The in-process collectives against their definitions, with three ranks.
final class CommunicatorTests: XCTestCase {
    func testCollectivesMatchTheirDefinitions() {
        let size = 3, count = 4
        let group = InProcessGroup(size: size)
        let lock = NSLock()
        var gathered = [[Float]](repeating: [], count: size)
        var scattered = [[Float]](repeating: [], count: size)
        var broadcasts = [[Int]](repeating: [], count: size)
        group.run { c in
            let r = c.rank
            let mine = (0..<count).map { Float(r * 100 + $0) }
            var all = [Float](repeating: 0, count: count * size)
            c.allGather(mine, count: count, into: &all)
            let contribution = (0..<count * size).map { Float(r + 1) * Float($0) }
            var block = [Float](repeating: 0, count: count)
            c.reduceScatterSum(contribution, count: count, into: &block)
            var values = r == 1 ? [7, 8, 9] : [0, 0, 0]
            c.broadcast(&values, root: 1)
            c.barrier()
            lock.withLock {
                gathered[r] = all
                scattered[r] = block
                broadcasts[r] = values
            }
        }
        let expectedGather = (0..<size).flatMap { r in (0..<count).map { Float(r * 100 + $0) } }
        for r in 0..<size {
            XCTAssertEqual(gathered[r], expectedGather)
            // sum over ranks of (rank+1) * i = 6 * i, block r.
            XCTAssertEqual(scattered[r], (0..<count).map { Float(6 * (r * count + $0)) })
            XCTAssertEqual(broadcasts[r], [7, 8, 9])
        }
    }

    /// The all-gather with per-rank counts (unequal, one of them zero) concatenates the blocks in
    /// rank order on every rank, in-process, through TimedCommunicator (which counts the bytes
    /// each rank receives) and in one process.
    func testAllGatherWithCountsConcatenatesUnequalBlocksInRankOrder() {
        let counts = [3, 0, 2]
        let expected = (0..<3).flatMap { r in (0..<counts[r]).map { Float(10 * r + $0) + 0.5 } }
        let group = InProcessGroup(size: 3)
        let lock = NSLock()
        var gathered = [[Float]](repeating: [], count: 3), received = [Int](repeating: 0, count: 3)
        group.run { c in
            let timed = TimedCommunicator(c, separateWaiting: false)
            // One float more than sent, so that the zero-count rank too passes real storage.
            let mine = (0..<counts[c.rank]).map { Float(10 * c.rank + $0) + 0.5 } + [-1]
            var all = [Float](repeating: .nan, count: counts.reduce(0, +))
            timed.allGather(mine, counts: counts, into: &all)
            lock.withLock {
                gathered[c.rank] = all
                received[c.rank] = timed.bytes["all-gather"] ?? -1
            }
        }
        for r in 0..<3 {
            XCTAssertEqual(gathered[r], expected, "rank \(r)")
            XCTAssertEqual(received[r], (5 - counts[r]) * 4, "rank \(r) receives the other ranks' floats")
        }
        let one = SingleProcessCommunicator()
        var alone = [Float](repeating: 0, count: 3)
        one.allGather([1, 2, 3], counts: [3], into: &alone)
        XCTAssertEqual(alone, [1, 2, 3])
    }
}
