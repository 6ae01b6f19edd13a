import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation

/// What `bench` trains on: synthetic 28x28 grey images, or (`--data`) shards streamed through
/// the same coordinator, read-ahead and prefetch as `train`.
enum BenchmarkData {
    /// The model's spec: colour input and the shards' classes with `--data`.
    static func spec(_ options: BenchmarkOptions, shards: ShardSet?) -> ModelSpec {
        guard let shards else { return options.preset.spec(classes: options.classes) }
        return layout(shards: shards).spec(options.preset, classes: shards.manifest.classNames.count)
    }

    /// The stored images: 28x28 grey squares resized to the input, or the shards' S x S
    /// squares under the paper's preprocessing. Every rank knows it.
    static func layout(shards: ShardSet?) -> DataLayout {
        guard let shards else { return DataLayout(format: .idx, preprocessing: .resize, imageSize: 28, channels: 1) }
        return DataLayout(format: .shards, preprocessing: .paper, imageSize: shards.manifest.imageSize, channels: shards.manifest.channels)
    }

    /// Rank 0's coordinator.
    static func coordinator(_ options: BenchmarkOptions, shards: ShardSet?, plan: NetworkPlan, maxBatch: Int) throws -> Coordinator {
        guard let shards else {
            var random = KeyedRandom(options.seed, 0xBE)
            let count = options.batchSize * 2
            let images = LabeledImages(height: 28, width: 28, pixels: (0..<(count * 784)).map { _ in UInt8(random.below(256)) },
                                       labels: (0..<count).map { _ in Int32(random.below(options.classes)) })
            let names = (0..<options.classes).map { "class \($0)" }
            return Coordinator(data: DataSet(name: "synthetic", format: .idx, train: images, test: images, classNames: names), input: plan.spec.input,
                               layout: layout(shards: nil), settings: DataSettings(), seed: options.seed)
        }
        guard shards.train.count >= options.batchSize else {
            throw TrainingError("\(shards.directory) has \(shards.train.count) training photos, fewer than --batch-size \(options.batchSize)")
        }
        guard shards.manifest.imageSize >= plan.spec.input.height else {
            throw TrainingError("\(shards.directory) holds \(shards.manifest.imageSize)-pixel squares, smaller than the \(plan.spec.input.height)-pixel input")
        }
        return Coordinator(data: TrainingImages(streaming: shards, trainLimit: nil, testLimit: nil), input: plan.spec.input, layout: layout(shards: shards),
                           settings: DataSettings(), seed: options.seed, maxBatch: maxBatch)
    }

    /// Photos per second that a read-ahead on every core decodes when nothing else runs in this
    /// process: three batches of a shuffled order.
    static func loaderImagesPerSecond(_ shards: ShardSet, batch: Int) -> Double {
        let n = min(batch, shards.train.count), batches = max(1, min(3, shards.train.count / n))
        let readAhead = ShardReadAhead(split: shards.train, window: 3 * n, threads: ProcessInfo.processInfo.activeProcessorCount)
        var random = KeyedRandom(7, 0x4C4F_4144)  // "LOAD"
        readAhead.restart(order: random.permutation(shards.train.count))
        let start = monotonicSeconds()
        for b in 0..<batches { _ = CoordinatorImages.orStop { try readAhead.take((b * n)..<((b + 1) * n)) } }
        return Double(batches * n) / (monotonicSeconds() - start)
    }

    /// The batches the steps train on: two synthetic batches in turn, or every batch of an
    /// epoch of the shards, epoch after epoch.
    struct Ranges {
        let batch: Int
        let images: Int?
        var stepsPerEpoch: Int { images.map { max(1, $0 / batch) } ?? 2 }

        /// The epoch that begins at `step`, when streaming (its order must be shuffled first).
        func epochStarting(at step: Int) -> Int? {
            images != nil && step % stepsPerEpoch == 0 ? step / stepsPerEpoch + 1 : nil
        }

        func range(_ step: Int) -> Range<Int> {
            let first = step % stepsPerEpoch * batch
            return first..<(first + batch)
        }

        /// The batch of `step`, if it is one of the `steps` and in the same epoch as `from`'s,
        /// so that its hand-out can start before the epoch's order is shuffled again.
        func range(_ step: Int, of steps: Int, from: Int) -> Range<Int>? {
            guard step < steps, images == nil || step / stepsPerEpoch == from / stepsPerEpoch else { return nil }
            return range(step)
        }
    }
}
