import AlexNetComm
import AlexNetCore
import Foundation
import Synchronization
import XCTest

/// The non-blocking collectives and the bucketed gradient sum that overlaps the backward pass.
final class GradientOverlapTests: XCTestCase {
    /// In-process, a non-blocking all-to-all and all-gather move nothing before `wait` and then
    /// give what the blocking ones give; through a TimedCommunicator too, which counts their bytes.
    func testNonBlockingCollectivesMatchTheBlockingOnesInProcess() {
        let size = 3, count = 5
        @Sendable func send(_ r: Int) -> [Float] { (0..<count * size).map { Float(r * 1000 + $0) } }
        let failures = Mutex<[String]>([])
        InProcessGroup(size: size).run { plain in
            let timed = TimedCommunicator(plain, separateWaiting: false)
            for c in [plain, timed as Communicator] {
                let mine = send(c.rank)
                var blocking = [Float](repeating: 0, count: count * size), started = blocking
                c.allToAll(mine, count: count, into: &blocking)
                let request = started.withUnsafeMutableBufferPointer { c.startAllToAll(mine, count: count, into: $0.baseAddress!) }
                let early = request.test()
                request.wait()
                var gatheredBlocking = [Float](repeating: 0, count: count * size), gathered = gatheredBlocking
                c.allGather(mine, count: count, into: &gatheredBlocking)
                let gather = gathered.withUnsafeMutableBufferPointer { c.startAllGather(mine, count: count, into: $0.baseAddress!) }
                gather.wait()
                let expected = (0..<size).flatMap { Array(send($0)[(c.rank * count)..<((c.rank + 1) * count)]) }
                failures.withLock { failures in
                    if early { failures.append("rank \(c.rank): an in-process request completed before its wait") }
                    if !request.test() || !gather.test() { failures.append("rank \(c.rank): a waited request is not complete") }
                    if started != blocking || blocking != expected { failures.append("rank \(c.rank): all-to-all \(started) != \(expected)") }
                    if gathered != gatheredBlocking || gathered != (0..<size).flatMap({ Array(send($0)[0..<count]) }) {
                        failures.append("rank \(c.rank): all-gather \(gathered)")
                    }
                }
            }
            // Two all-to-alls and two all-gathers of `count` floats from each of the other ranks.
            let received = 4 * count * (size - 1) * 4
            failures.withLock { failures in
                if timed.bytes["all-to-all", default: 0] + timed.bytes["all-gather", default: 0] != received {
                    failures.append("rank \(plain.rank): counted \(timed.bytes), expected \(received) bytes")
                }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        let one = SingleProcessCommunicator()
        var out = [Float](repeating: 0, count: 3)
        let request = out.withUnsafeMutableBufferPointer { one.startAllToAll([1, 2, 3], count: 3, into: $0.baseAddress!) }
        XCTAssertTrue(request.test())
        XCTAssertEqual(out, [1, 2, 3])
    }

    /// The non-blocking reduce-scatter gives the blocking one's bits (values of very different
    /// sizes, so that another order of additions would show), in-process with 2 and 3 ranks,
    /// through a TimedCommunicator (which counts its bytes at the start) and in one process.
    func testNonBlockingReduceScatterEqualsTheBlockingOneBitForBit() {
        for size in [2, 3] {
            let count = 1001
            @Sendable func send(_ r: Int) -> [Float] {
                var random = KeyedRandom(11, UInt64(size), UInt64(r))
                return (0..<count * size).map { _ in Float(random.normal()) * [1e-4, 1, 3e3][r % 3] }
            }
            let failures = Mutex<[String]>([])
            InProcessGroup(size: size).run { plain in
                let timed = TimedCommunicator(plain, separateWaiting: false)
                for c in [plain, timed as Communicator] {
                    let mine = send(c.rank)
                    var blocking = [Float](repeating: 0, count: count), started = blocking
                    c.reduceScatterSum(mine, count: count, into: &blocking)
                    // The send buffer must outlive the request: not an array's temporary pointer.
                    let (early, late) = mine.withUnsafeBufferPointer { send in
                        started.withUnsafeMutableBufferPointer { receive in
                            let request = c.startReduceScatterSum(send.baseAddress!, count: count, into: receive.baseAddress!)
                            let early = request.test()
                            request.wait()
                            return (early, request.test())
                        }
                    }
                    // The sum in rank order, as the blocking one documents it.
                    var expected = Array(send(0)[(c.rank * count)..<((c.rank + 1) * count)])
                    for r in 1..<size { for i in 0..<count { expected[i] += send(r)[c.rank * count + i] } }
                    failures.withLock { failures in
                        if early || !late { failures.append("size \(size) rank \(c.rank): an in-process request completed before its wait, or not after it") }
                        if started.map(\.bitPattern) != blocking.map(\.bitPattern) { failures.append("size \(size) rank \(c.rank): non-blocking != blocking") }
                        if blocking.map(\.bitPattern) != expected.map(\.bitPattern) { failures.append("size \(size) rank \(c.rank): blocking != rank-order sum") }
                    }
                }
                let received = 2 * count * (size - 1) * 4
                failures.withLock { failures in
                    if timed.bytes["reduce-scatter", default: 0] != received { failures.append("rank \(plain.rank): counted \(timed.bytes), expected \(received)") }
                }
            }
            XCTAssertEqual(failures.withLock { $0 }, [])
        }
        var out = [Float](repeating: 0, count: 2)
        let request = out.withUnsafeMutableBufferPointer { SingleProcessCommunicator().startReduceScatterSum([4, 5], count: 2, into: $0.baseAddress!) }
        XCTAssertTrue(request.test())
        XCTAssertEqual(out, [4, 5])
    }

    /// Buckets hold whole stages from the last stage down, close once they reach the capacity,
    /// and cover the arena exactly.
    func testBucketsTakeWholeStagesFromTheLastOne() {
        // Stage parameter counts; stages without parameters (0) belong to no bucket.
        let counts = [10, 0, 30, 5, 0, 100, 2, 0]
        let buckets = GradientBuckets(parameterCounts: counts, capacity: 32)
        // Offsets: stage 0 at 0..<10, 2 at 10..<40, 3 at 40..<45, 5 at 45..<145, 6 at 145..<147.
        XCTAssertEqual(buckets.ranges, [45..<147, 10..<45, 0..<10])
        XCTAssertEqual(buckets.finalAfterStage, [5, 2, 0])
        XCTAssertEqual(buckets.count, 147)
        XCTAssertEqual(GradientBuckets(parameterCounts: counts, capacity: 1 << 30).ranges, [0..<147])
        XCTAssertEqual(GradientBuckets(parameterCounts: counts, capacity: 1).ranges, [145..<147, 45..<145, 40..<45, 10..<40, 0..<10])
        // Per bucket, 2 (R - 1) blocks of ceil(count / R) floats reach each of R ranks.
        XCTAssertEqual(buckets.trafficBytes(ranks: 3), 3 * 2 * 2 * (34 + 12 + 4) * 4)
        XCTAssertEqual(buckets.trafficBytes(ranks: 1), 0)
    }

    /// Summed bucket by bucket as the stages report their gradients final, with the step's
    /// weight, the gradients are bit for bit those of the previous one-shot sum (weight the
    /// arena, then one OrderedAllReduce over all of it), whatever the buckets, pieces and slots.
    func testBucketedSumEqualsTheOneShotSumBitForBit() {
        let size = 3, counts = [7, 0, 300, 1, 1000, 0, 33, 0]
        let total = counts.reduce(0, +), weight: Float = 0.37
        @Sendable func gradient(_ r: Int) -> [Float] {
            var random = KeyedRandom(9, UInt64(r), 0)
            return (0..<total).map { _ in Float(random.normal()) * (r == 1 ? 1e-3 : 3) }
        }
        let reference = sums(size: size) { c in
            var g = gradient(c.rank)
            for i in g.indices { g[i] *= weight }
            g.withUnsafeMutableBufferPointer { OrderedAllReduce(communicator: c, slice: 64).sum($0.baseAddress!, count: total) }
            return g
        }
        XCTAssertNotEqual(reference[0], gradient(0), "the sum changed something")
        for (capacity, slice, slots) in [(1 << 20, 1 << 20, 3), (40, 7, 1), (300, 50, 2), (1, 1, 3)] {
            let buckets = GradientBuckets(parameterCounts: counts, capacity: capacity)
            let bucketed = sums(size: size) { c in
                var g = gradient(c.rank)
                let sum = BucketedGradientSum(twins: c, buckets: buckets, slice: slice, slots: slots)
                g.withUnsafeMutableBufferPointer { values in
                    sum.begin(values.baseAddress!, weight: weight)
                    for stage in counts.indices.reversed() { sum.stageFinished(stage) }
                    sum.finish()
                }
                return g
            }
            for r in 0..<size {
                XCTAssertEqual(bucketed[r].map(\.bitPattern), reference[r].map(\.bitPattern), "capacity \(capacity), slice \(slice), slots \(slots), rank \(r)")
            }
        }
    }

    /// A rank with no images in the step (no backward pass: no stage reports) still takes part
    /// with zeros, at `finish`.
    func testARankWithoutBackwardSumsZerosAtFinish() {
        let counts = [50, 0, 20]
        let result = sums(size: 2) { c in
            var g = [Float](repeating: c.rank == 0 ? 2 : 0, count: 70)
            let sum = BucketedGradientSum(twins: c, buckets: GradientBuckets(parameterCounts: counts, capacity: 10), slice: 8, slots: 2)
            g.withUnsafeMutableBufferPointer { values in
                sum.begin(values.baseAddress!, weight: c.rank == 0 ? 0.5 : 0)
                if c.rank == 0 { for stage in counts.indices.reversed() { sum.stageFinished(stage) } }
                sum.finish()
            }
            return g
        }
        XCTAssertEqual(result, [[Float](repeating: 1, count: 70), [Float](repeating: 1, count: 70)])
    }

    /// Runs `body` on `size` simulated ranks and returns each rank's result.
    private func sums(size: Int, _ body: @escaping @Sendable (Communicator) -> [Float]) -> [[Float]] {
        let results = Mutex([[Float]](repeating: [], count: size))
        InProcessGroup(size: size).run { c in
            let values = body(c)
            results.withLock { $0[c.rank] = values }
        }
        return results.withLock { $0 }
    }
}
