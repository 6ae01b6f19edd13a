import AlexNetCore
import Foundation
import Synchronization

/// Where the coordinator's images are: in memory, or in shards read ahead by worker threads.
/// Either way it hands out `LabeledImages` and the positions in them to assemble.
/// Sendable: the prefetch thread assembles training batches from it while the coordinator's
/// thread assembles test batches.
public final class CoordinatorImages: Sendable {
    /// The in-memory splits (nil when streaming).
    let memoryTrain: LabeledImages?
    private let memoryTest: LabeledImages?
    let trainReadAhead: ShardReadAhead?
    private let testReadAhead: ShardReadAhead?
    /// The side of the stored squares (or of the stored images, for `resize`).
    let side: Int
    /// The test batch taken last: the ten patches of a batch are assembled from one read.
    private let lastTest = Mutex<(range: Range<Int>, images: LabeledImages)?>(nil)

    /// Photos the training read-ahead holds at most: three batches, for one being assembled,
    /// one decoded ahead and room for the shares of replicas.
    public static func window(maxBatch: Int) -> Int { max(3 * maxBatch, 256) }

    init(_ data: TrainingImages, maxBatch: Int) {
        switch data.storage {
        case .memory(let set):
            (memoryTrain, memoryTest, trainReadAhead, testReadAhead) = (set.train, set.test, nil, nil)
            side = set.train.height
        case .streamed(let shards, _, let testCount):
            let threads = ProcessInfo.processInfo.activeProcessorCount
            (memoryTrain, memoryTest) = (nil, nil)
            trainReadAhead = maxBatch > 0 ? ShardReadAhead(split: shards.train, window: Self.window(maxBatch: maxBatch), threads: threads) : nil
            let test = ShardReadAhead(split: shards.val, window: Self.window(maxBatch: maxBatch), threads: threads)
            test.restart(order: Array(0..<testCount))
            testReadAhead = test
            side = shards.manifest.imageSize
        }
    }

    /// Training images `indices` (the epoch's order at `range`): the images and the positions in them.
    func training(_ range: Range<Int>, indices: ArraySlice<Int>) -> (LabeledImages, ArraySlice<Int>) {
        if let memoryTrain { return (memoryTrain, indices) }
        return (Self.orStop { try trainReadAhead!.take(range) }, Array(0..<range.count)[...])
    }

    /// Test images `range`, in file order.
    func test(_ range: Range<Int>) -> (LabeledImages, ArraySlice<Int>) {
        if let memoryTest { return (memoryTest, Array(range)[...]) }
        if let last = lastTest.withLock({ $0 }), last.range == range { return (last.images, Array(0..<range.count)[...]) }
        let images = Self.orStop { try testReadAhead!.take(range) }
        lastTest.withLock { $0 = (range, images) }
        return (images, Array(0..<range.count)[...])
    }

    /// A shard damaged after it was opened (its index was checked then) cannot be trained
    /// around: end the job saying which (`JobEnd`; under mpirun it ends every rank).
    public static func orStop(_ read: () throws -> LabeledImages) -> LabeledImages {
        do { return try read() } catch { JobEnd.now("\(error)") }
    }
}
