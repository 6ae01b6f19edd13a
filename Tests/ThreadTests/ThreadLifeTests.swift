import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetMPI
import Foundation
import Synchronization
import XCTest

/// No thread outlives its owner: every object that owns a thread (the coordinator with its
/// prefetcher and shard read-aheads, the read-ahead alone, the gradient sum's progress thread,
/// the collective watchdog, an in-process run) is made and dropped thousands of times in all,
/// many of them before their threads can have run, while a spinning thread keeps the other core
/// busy. The process must not crash, and every thread must have been joined: the count of
/// live `WorkerThread`s comes back to where it was.
final class ThreadLifeTests: XCTestCase {
    var root = ""
    /// Fewer rounds in a debug build (ThreadSanitizer's, in scripts/tsan), which runs many times slower.
    #if DEBUG
    let rounds = 60
    #else
    let rounds = 600
    #endif

    override func setUp() {
        root = NSTemporaryDirectory() + "thread-life-\(getpid())-\(abs(name.hashValue))"
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Runs `body` while a thread spins on another core, then checks that no thread is left.
    func withBusyCore(_ body: () throws -> Void) rethrows {
        let before = WorkerThread.live
        let spin = Spin()
        let spinner = WorkerThread(name: "spinner", stop: { spin.running.store(false, ordering: .relaxed) }) {
            while spin.running.load(ordering: .relaxed) { spin.count.add(1, ordering: .relaxed) }
        }
        spinner.start()
        try body()
        spinner.stop()
        spinner.join()
        XCTAssertGreaterThan(spin.count.load(ordering: .relaxed), 0, "the spinner ran")
        XCTAssertEqual(WorkerThread.live, before, "every thread started was joined")
    }

    /// A busy loop's flag and count (atomics: the loop must not take a lock).
    final class Spin: Sendable {
        let running = Atomic<Bool>(true)
        let count = Atomic<Int>(0)
    }

    // MARK: the primitive

    func testAThreadStoppedBeforeItStartsNeverRunsAndJoinReturns() {
        let ran = Guarded(0)
        for k in 0..<200 {
            let thread = WorkerThread(name: "never") { ran.withLock { $0 += 1 } }
            if k % 2 == 0 { thread.stop() } else { thread.join() }
            thread.start()
            thread.join()
        }
        XCTAssertEqual(ran.withLock { $0 }, 0, "stopped or joined before start: the body never runs")
        XCTAssertEqual(WorkerThread.live, 0)
    }

    func testStopWakesAWaitingThreadAndEveryJoinerReturns() {
        withBusyCore {
            for _ in 0..<rounds {
                let stopping = Guarded(false), finished = Guarded(false)
                let thread = WorkerThread(name: "waiter", stop: {
                    stopping.withLock { $0 = true }
                    stopping.broadcast()
                }) {
                    stopping.withLock(waitingUntil: { $0 }) { _ in }
                    finished.withLock { $0 = true }
                }
                thread.start()
                let otherJoiner = WorkerThread(name: "joiner") { thread.join() }
                otherJoiner.start()
                thread.stop()
                thread.join()
                XCTAssertTrue(finished.withLock { $0 }, "join returns only once the body has ended")
                otherJoiner.join()
            }
        }
    }

    // MARK: the owners

    func testCoordinatorsWithPrefetchersDroppedAtOnceOrMidBatch() throws {
        let (images, layout) = try DataSettings().load(directory: try writeIDX(), trainLimit: nil, testLimit: nil, preset: .tiny,
                                                       seed: 1, say: { _ in })
        let stored = StoredBatch(format: StoredImageFormat(layout: layout), capacity: 4)
        withBusyCore {
            for k in 0..<(3 * rounds) {
                let coordinator = Coordinator(data: images, input: layout.input(of: .tiny), layout: layout, settings: DataSettings(),
                                              seed: UInt64(k), maxBatch: 4)
                guard k % 3 != 0 else { continue }  // dropped at once, its thread most likely not yet running
                coordinator.shuffle(epoch: 0)
                // Start the next batch in the background, and drop the coordinator while it may still be packing.
                coordinator.packTraining(0..<4, into: stored, next: 4..<8)
                if k % 3 == 2 { coordinator.packTraining(4..<8, into: stored) }
            }
        }
    }

    func testStreamingCoordinatorsAndReadAheadsDroppedAtOnceOrMidRead() throws {
        let shards = try writeShards()
        var streamed = DataSettings()
        streamed.inMemoryLimit = 0
        let (images, layout) = try streamed.load(directory: shards, trainLimit: nil, testLimit: nil, preset: .tiny, seed: 1, say: { _ in })
        let split = try ShardSet(directory: shards).train
        let stored = StoredBatch(format: StoredImageFormat(layout: layout), capacity: 4)
        withBusyCore {
            for k in 0..<(rounds / 3) {  // five threads each: two read-aheads of two decoders, and the prefetcher
                let coordinator = Coordinator(data: images, input: layout.input(of: .tiny), layout: layout, settings: streamed,
                                              seed: UInt64(k), maxBatch: 4)
                if k % 2 == 1 {
                    coordinator.shuffle(epoch: 0)
                    coordinator.packTraining(0..<4, into: stored, next: 4..<8)
                }
            }
            for k in 0..<rounds {
                let readAhead = ShardReadAhead(split: split, window: 4, threads: 2)
                guard k % 2 == 1 else { continue }
                readAhead.restart(order: Array(0..<split.count))
                XCTAssertEqual(try? readAhead.take(0..<2).labels.count, 2)
            }
        }
    }

    func testGradientSumsWithProgressThreadsAndInProcessRunsDropped() {
        let buckets = GradientBuckets(parameterCounts: [30, 10], capacity: 16)
        withBusyCore {
            for k in 0..<(rounds / 2) {  // four threads each: two ranks, each with a progress thread
                InProcessGroup(size: 2).run { c in
                    let sum = BucketedGradientSum(twins: c, buckets: buckets, slice: 8, slots: 2, progressInterval: 1e-4)
                    guard k % 2 == 1 else { return }
                    var g = [Float](repeating: Float(c.rank + 1), count: 40)
                    g.withUnsafeMutableBufferPointer { values in
                        sum.begin(values.baseAddress!, weight: 1)
                        for stage in [1, 0] { sum.stageFinished(stage) }
                        sum.finish()
                    }
                    XCTAssertEqual(g, [Float](repeating: 3, count: 40))
                }
            }
        }
    }

    func testWatchdogsDroppedAtOnceOrAfterACollective() {
        withBusyCore {
            for k in 0..<(3 * rounds) {
                let watchdog = CollectiveWatchdog(timeout: 3600, rank: 0) { _ in XCTFail("no collective ran too long") }
                if k % 2 == 1 { watchdog.time(.barrier) { usleep(10) } }
            }
        }
    }

    // MARK: data

    func writeIDX() throws -> String {
        let folder = "\(root)/idx"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func idx(_ dimensions: [Int], _ payload: [UInt8]) -> Data {
            var bytes: [UInt8] = [0, 0, 8, UInt8(dimensions.count)]
            for d in dimensions { bytes += [0, 0, UInt8(d >> 8), UInt8(d & 255)] }
            return Data(bytes + payload)
        }
        let pixels = { (count: Int) in (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37) } }
        try idx([12, 10, 10], pixels(1200)).write(to: URL(fileURLWithPath: "\(folder)/train-images-idx3-ubyte"))
        try idx([12], (0..<12).map { UInt8($0 % 10) }).write(to: URL(fileURLWithPath: "\(folder)/train-labels-idx1-ubyte"))
        try idx([4, 10, 10], pixels(400)).write(to: URL(fileURLWithPath: "\(folder)/t10k-images-idx3-ubyte"))
        try idx([4], [1, 2, 3, 4]).write(to: URL(fileURLWithPath: "\(folder)/t10k-labels-idx1-ubyte"))
        return folder
    }

    /// A raw shard set of 17x17 squares (the tiny preset's S): 8 train and 4 val photos of two classes.
    func writeShards() throws -> String {
        for (split, count) in [("train", 4), ("val", 2)] {
            for (label, name) in ["ant", "bee"].enumerated() {
                let folder = "\(root)/photos/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for i in 0..<count {
                    let pixels = (0..<(24 * 19 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (7 + label) &+ i) }
                    try ImageEncoder.writePNG(pixels, width: 24, height: 19, channels: 3, to: "\(folder)/\(i).png")
                }
            }
        }
        var options = PrepareOptions(source: "\(root)/photos", output: "\(root)/shards")
        options.imageSize = 17
        options.encoding = .raw
        options.photosPerShard = 3
        options.threads = 2
        _ = try Prepare.run(options) { _ in }
        return "\(root)/shards"
    }
}
