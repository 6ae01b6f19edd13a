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
}
