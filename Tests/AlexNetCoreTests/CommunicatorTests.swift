import AlexNetComm
import AlexNetCore
import XCTest

/// The in-process collectives against their definitions, with three ranks.
final class CommunicatorTests: XCTestCase {
    func testCollectivesMatchTheirDefinitions() {
        let size = 3, count = 4
        let group = InProcessGroup(size: size)
        let results = group.collect { c in
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
            return (gathered: all, scattered: block, broadcasts: values)
        }
        let (gathered, scattered, broadcasts) = (results.map(\.gathered), results.map(\.scattered), results.map(\.broadcasts))
        let expectedGather = (0..<size).flatMap { r in (0..<count).map { Float(r * 100 + $0) } }
        for r in 0..<size {
            XCTAssertEqual(gathered[r], expectedGather)
            // sum over ranks of (rank+1) * i = 6 * i, block r.
            XCTAssertEqual(scattered[r], (0..<count).map { Float(6 * (r * count + $0)) })
            XCTAssertEqual(broadcasts[r], [7, 8, 9])
        }
    }

    /// `collect` hands back what each rank thread returned, in rank order, however the threads finish.
    func testCollectReturnsEachRanksValueInRankOrder() {
        let values = InProcessGroup(size: 4).collect { c in
            if c.rank == 0 { usleep(20_000) }  // rank 0 finishes last
            return "rank \(c.rank) of \(c.size)"
        }
        XCTAssertEqual(values, (0..<4).map { "rank \($0) of 4" })
    }

    /// The all-gather with per-rank counts (unequal, one of them zero) concatenates the blocks in
    /// rank order on every rank, in-process, through TimedCommunicator (which counts the bytes
    /// each rank receives) and in one process.
    func testAllGatherWithCountsConcatenatesUnequalBlocksInRankOrder() {
        let counts = [3, 0, 2]
        let expected = (0..<3).flatMap { r in (0..<counts[r]).map { Float(10 * r + $0) + 0.5 } }
        let group = InProcessGroup(size: 3)
        let results = group.collect { c in
            let timed = TimedCommunicator(c, separateWaiting: false)
            // One float more than sent, so that the zero-count rank too passes real storage.
            let mine = (0..<counts[c.rank]).map { Float(10 * c.rank + $0) + 0.5 } + [-1]
            var all = [Float](repeating: .nan, count: counts.reduce(0, +))
            timed.allGather(mine, counts: counts, into: &all)
            return (gathered: all, received: timed.bytes["all-gather"] ?? -1)
        }
        let (gathered, received) = (results.map(\.gathered), results.map(\.received))
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
