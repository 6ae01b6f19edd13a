import AlexNetCore

/// Rank 0's data side: it owns the data set, shuffles it with the seed, and assembles each
/// `Batch` (preprocessing and augmentation) before `BatchTransport` moves it to the ranks.
/// Images come from memory, or from shards through a bounded read-ahead (`CoordinatorImages`).
public final class Coordinator {
    public let data: TrainingImages
    private let images: CoordinatorImages
    private let input: Shape
    private let seed: UInt64
    private let pipeline: Pipeline
    private var prefetcher: Prefetcher?
    public private(set) var order: [Int] = []
    public private(set) var epoch = 0

    /// The two ways of making inputs (see `Preprocessing`).
    enum Pipeline: Sendable {
        case resize(BatchAssembler)
        case paper(CropAssembler)
    }

    public convenience init(data: DataSet, input: Shape, layout: DataLayout, settings: DataSettings, seed: UInt64,
                     restored: InputStatistics? = nil, maxBatch: Int = 0) {
        self.init(data: TrainingImages(data), input: input, layout: layout, settings: settings, seed: seed, restored: restored, maxBatch: maxBatch)
    }

    /// `restored` is what a checkpoint's model was trained with; by default the training set's
    /// own statistics are computed here (for shards: from `prepare`'s sums).
    public init(data: TrainingImages, input: Shape, layout: DataLayout, settings: DataSettings, seed: UInt64,
         restored: InputStatistics? = nil, maxBatch: Int = 0) {
        self.data = data
        images = CoordinatorImages(data, maxBatch: maxBatch)
        self.input = input
        self.seed = seed
        switch layout.preprocessing {
        case .resize:
            let (mean, std) = restored?.normalization ?? data.pixelSums?.meanAndDeviation() ?? images.memoryTrain!.pixelStatistics()
            pipeline = .resize(BatchAssembler(sourceHeight: images.side, sourceWidth: images.side,
                                              channels: input.channels, height: input.height, width: input.width, mean: mean, std: std))
        case .paper:
            let statistics = restored?.photo ?? data.pixelSums.map { PhotoStatistics.compute($0, meanKind: settings.meanKind) }
                ?? PhotoStatistics.compute(images.memoryTrain!, meanKind: settings.meanKind)
            pipeline = .paper(CropAssembler(statistics: statistics, channels: input.channels, height: input.height,
                                            width: input.width, augmentation: settings.augmentation))
        }
        if settings.prefetch && maxBatch > 0 {
            prefetcher = Prefetcher(pixelCount: maxBatch * input.size, labelCount: maxBatch)
        }
    }

    /// What this coordinator normalises with, for checkpoints.
    public var statistics: InputStatistics {
        switch pipeline {
        case .resize(let a): return InputStatistics(normalization: (a.mean, a.std), photo: nil)
        case .paper(let a): return InputStatistics(normalization: nil, photo: a.statistics)
        }
    }

    /// The epoch's data order: a permutation keyed by (seed, epoch), the same for every model
    /// and for both ways of holding images.
    public func shuffle(epoch: Int) {
        var random = KeyedRandom(seed, 0x5348_5546, UInt64(epoch))
        order = random.permutation(data.trainCount)
        self.epoch = epoch
        images.trainReadAhead?.restart(order: order)
    }

    /// FNV-1a over the epoch's order, so runs can show that they saw the same data in the same order.
    public var orderChecksum: UInt64 {
        order.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// Fills `batch` with training images `order[range]` (augmented), from the batch prepared
    /// in the background if it is this one; then starts preparing `next`, if given.
    public func assembleTraining(_ range: Range<Int>, into batch: Batch, next: Range<Int>? = nil) {
        let n = range.count
        precondition(n <= batch.capacity, "\(n) images into a batch of \(batch.capacity)")
        batch.count = n
        let key = { (r: Range<Int>) in self.epoch << 40 | r.lowerBound }
        let taken = prefetcher?.take(key: key(range), pixelCount: n * input.size, labelCount: n,
                                     into: batch.pixels.pointer, labels: batch.labels) ?? false
        if !taken { training(range)(batch.pixels.pointer, batch.labels) }
        if let next, let prefetcher, !next.isEmpty {
            prefetcher.start(key: key(next), training(next))
        }
    }

    /// The work of assembling training images `order[range]` of this epoch, with its inputs
    /// captured now, so that it can run on another thread. Streamed photos are taken from the
    /// read-ahead in order; each keeps the augmentation of its own index, as in memory.
    private func training(_ range: Range<Int>) -> @Sendable (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void {
        let (indices, images, seed, epoch, pipeline) = (order[range], images, seed, epoch, pipeline)
        return { pixels, labels in
            let (source, positions) = images.training(range, indices: indices)
            switch pipeline {
            case .resize(let a):
                a.assemble(positions, from: source, pixels: pixels, labels: labels)
            case .paper(let a):
                a.assemble(positions, from: source, view: { b, _ in a.trainingView(seed: seed, epoch: epoch, index: indices[indices.startIndex + b]) },
                           pixels: pixels, labels: labels)
            }
        }
    }

    /// Fills `batch` with test images `range`, in file order, as seen through test view `view`
    /// (0: the centre crop; see `CropAssembler.centreView`).
    public func assembleTest(_ range: Range<Int>, view: Int = 0, into batch: Batch) {
        precondition(range.count <= batch.capacity, "\(range.count) images into a batch of \(batch.capacity)")
        batch.count = range.count
        let (source, positions) = images.test(range)
        switch pipeline {
        case .resize(let a):
            a.assemble(positions, from: source, pixels: batch.pixels.pointer, labels: batch.labels)
        case .paper(let a):
            let v = a.centreView(view)
            a.assemble(positions, from: source, view: { _, _ in v }, pixels: batch.pixels.pointer, labels: batch.labels)
        }
    }
}
