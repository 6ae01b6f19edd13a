import AlexNetComm
import AlexNetCore
import XCTest

/// The collectives that replicas add (split, scatter, all-to-all), the logits' all-gather with
/// per-rank counts on the sub-communicators, and the ordered sums built on them, in-process with six ranks, against their definitions.
final class ReplicaCommunicatorTests: XCTestCase {
    func testSplitScatterAndAllToAllMatchTheirDefinitions() {
        let size = 6
        let group = InProcessGroup(size: size)
        let results = group.collect { world in
            let r = world.rank
            // Layout of 3 replicas of 2 towers: pairs (r/2) ranked by tower, twins (r%2) ranked by replica.
            let layout = ReplicaLayout(world: world, towers: 2)
            // A split with keys that reverse the order within each color.
            let reversed = world.split(color: r % 3, key: -r)
            // Scatter of unequal byte counts from rank 4 of the world: rank k gets k bytes.
            let counts = (0..<size).map { $0 }
            let source = (0..<counts.reduce(0, +)).map { UInt8($0) }
            var received = [UInt8](repeating: 0, count: r)
            source.withUnsafeBytes { send in
                received.withUnsafeMutableBytes { world.scatter(send, counts: counts, into: $0, root: 4) }
            }
            // All-to-all among the twins: block j of rank i is 10*i + j.
            let twins = layout.twins
            let blocks = (0..<twins.size).flatMap { j in [Float(10 * twins.rank + j), Float(-j)] }
            var gathered = [Float](repeating: 0, count: blocks.count)
            twins.allToAll(blocks, count: 2, into: &gathered)
            // The logits' all-gather within each pair: tower 0 holds 3 classes, tower 1 two.
            let classes = [3, 2], pair = layout.pair
            var logits = [Float](repeating: .nan, count: 5)
            pair.allGather((0..<classes[pair.rank]).map { Float(100 * r + $0) }, counts: classes, into: &logits)
            return (places: [layout.replica, layout.tower, layout.pair.rank, layout.pair.size, layout.twins.rank, layout.twins.size,
                             reversed.rank, reversed.size],
                    scattered: received, exchanged: gathered, pairLogits: logits)
        }
        let (places, scattered) = (results.map(\.places), results.map(\.scattered))
        let (exchanged, pairLogits) = (results.map(\.exchanged), results.map(\.pairLogits))
        for r in 0..<size {
            // Ranks {c, c+3} share color c; key -r puts the higher world rank first.
            XCTAssertEqual(places[r], [r / 2, r % 2, r % 2, 2, r / 2, 3, r < 3 ? 1 : 0, 2], "rank \(r)")
            let offset = (0..<r).reduce(0, +)
            XCTAssertEqual(scattered[r], (0..<r).map { UInt8(offset + $0) }, "rank \(r)")
            let twinRank = r / 2
            XCTAssertEqual(exchanged[r], (0..<3).flatMap { i in [Float(10 * i + twinRank), Float(-twinRank)] }, "rank \(r)")
            let tower0 = Float(100 * (r / 2 * 2)), tower1 = tower0 + 100
            XCTAssertEqual(pairLogits[r], [tower0, tower0 + 1, tower0 + 2, tower1, tower1 + 1], "rank \(r): its own pair's logits")
        }
    }

    /// Gather, the reverse of scatter (how rank 0 collects the towers' checkpoint files): rank k
    /// sends k + 1 bytes, and only the root's buffer changes, with the blocks in rank order.
    func testGatherMatchesItsDefinition() {
        let size = 4, root = 2
        let counts = (0..<size).map { $0 + 1 }
        let group = InProcessGroup(size: size)
        let results = group.collect { world in
            let mine = (0..<counts[world.rank]).map { UInt8(50 * world.rank + $0) }
            var received = [UInt8](repeating: 255, count: counts.reduce(0, +))
            mine.withUnsafeBytes { send in
                received.withUnsafeMutableBytes { world.gather(send, counts: counts, into: $0, root: root) }
            }
            return received
        }
        let expected = (0..<size).flatMap { r in (0..<counts[r]).map { UInt8(50 * r + $0) } }
        for r in 0..<size {
            XCTAssertEqual(results[r], r == root ? expected : [UInt8](repeating: 255, count: expected.count), "rank \(r)")
        }
        var one = [UInt8](repeating: 0, count: 3)
        [UInt8]([7, 8, 9]).withUnsafeBytes { send in
            one.withUnsafeMutableBytes { SingleProcessCommunicator().gather(send, counts: [3], into: $0, root: 0) }
        }
        XCTAssertEqual(one, [7, 8, 9])
    }

    /// The ordered all-reduce sums each element in rank order on every rank, whatever the
    /// slicing, including a length that does not divide by the ranks.
    func testOrderedAllReduceIsTheRankOrderSumOnEveryRank() {
        let size = 3, count = 1001
        @Sendable func contribution(_ r: Int) -> [Float] { (0..<count).map { Float(r + 1) * 0.1 + Float($0) * Float(r == 1 ? 1e-3 : 7.0) } }
        let expected = (0..<count).map { i in (0..<size).dropFirst().reduce(contribution(0)[i]) { $0 + contribution($1)[i] } }
        for slice in [1 << 20, 64, 1] {
            let group = InProcessGroup(size: size)
            let sums = group.collect { c in
                var values = contribution(c.rank)
                let reduction = OrderedAllReduce(communicator: c, slice: slice)
                values.withUnsafeMutableBufferPointer { reduction.sum($0.baseAddress!, count: count) }
                let total = c.sumInRankOrder([Double(c.rank) + 0.5, c.rank == 2 ? .nan : 1])
                return (values: values, total: total)
            }
            let (results, metrics) = (sums.map(\.values), sums.map(\.total))
            for r in 0..<size {
                XCTAssertEqual(results[r], expected, "slice \(slice), rank \(r)")
                XCTAssertEqual(metrics[r][0], 4.5)
                XCTAssertTrue(metrics[r][1].isNaN, "a NaN on one rank reaches every rank")
            }
        }
    }

    func testSharesCoverTheBatchInOrder() {
        XCTAssertEqual((0..<4).map { ReplicaLayout.share($0, of: 16, perReplica: 4) }, [0..<4, 4..<8, 8..<12, 12..<16])
        // A partial last batch: later replicas get fewer images, or none.
        XCTAssertEqual((0..<4).map { ReplicaLayout.share($0, of: 6, perReplica: 4) }, [0..<4, 4..<6, 6..<6, 6..<6])
    }
}
