import AlexNetCore

/// Rank 0's data side: it owns the data set, shuffles it with the seed, and packs each batch
/// as stored bytes plus each image's augmentation draws (`StoredBatch`), which the transport
/// moves and every rank expands into its float `Batch` with `pipeline`.
/// Images come from memory, or from shards through a bounded read-ahead (`CoordinatorImages`).
public final class Coordinator {
    public let data: TrainingImages
    private let images: CoordinatorImages
    private let seed: UInt64
    /// How inputs are made from the stored images: the draws here, and every rank's expansion.
    public let pipeline: InputPipeline
    /// The records the coordinator packs.
    public let format: StoredImageFormat
    private var prefetcher: Prefetcher?
    public private(set) var order: [Int] = []
    public private(set) var epoch = 0

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
        self.seed = seed
        let statistics: InputStatistics
        switch layout.preprocessing {
        case .resize:
            statistics = InputStatistics(normalization: restored?.normalization ?? data.pixelSums?.meanAndDeviation()
                                         ?? images.memoryTrain!.pixelStatistics())
        case .paper:
            statistics = InputStatistics(photo: restored?.photo ?? data.pixelSums.map { PhotoStatistics.compute($0, meanKind: settings.meanKind) }
                                         ?? PhotoStatistics.compute(images.memoryTrain!, meanKind: settings.meanKind))
        }
        precondition(images.side == layout.imageSize, "images of side \(images.side) in a layout of \(layout.imageSize)")
        pipeline = InputPipeline(layout: layout, input: input, statistics: statistics, augmentation: settings.augmentation)
        format = StoredImageFormat(layout: layout)
        if settings.prefetch && maxBatch > 0 {
            prefetcher = Prefetcher(byteCount: maxBatch * format.recordBytes)
        }
    }

    /// What this coordinator normalises with, for checkpoints.
    public var statistics: InputStatistics { pipeline.statistics }

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

    /// Packs training images `order[range]` (with their draws) into `stored`, from the records
    /// prepared in the background if they are these; then starts preparing `next`, if given.
    public func packTraining(_ range: Range<Int>, into stored: StoredBatch, next: Range<Int>? = nil) {
        precondition(range.count <= stored.capacity, "\(range.count) images into a batch of \(stored.capacity)")
        let key = { (r: Range<Int>) in self.epoch << 40 | r.lowerBound }
        let taken = prefetcher?.take(key: key(range), byteCount: range.count * format.recordBytes, into: stored.storage) ?? false
        if !taken { training(range)(stored.storage) }
        if let next, let prefetcher, !next.isEmpty {
            prefetcher.start(key: key(next), training(next))
        }
    }

    /// The work of packing training images `order[range]` of this epoch, with its inputs
    /// captured now, so that it can run on another thread. Streamed photos are taken from the
    /// read-ahead in order; each keeps the augmentation of its own index, as in memory.
    private func training(_ range: Range<Int>) -> @Sendable (UnsafeMutableRawPointer) -> Void {
        let (indices, images, seed, epoch, pipeline, format) = (order[range], images, seed, epoch, pipeline, format)
        return { storage in
            let (source, positions) = images.training(range, indices: indices)
            let stored = StoredBatch(viewing: storage, format: format, capacity: range.count)
            Self.pack(positions, of: source, into: stored) { b in
                guard case .paper(let a) = pipeline else { return nil }
                return a.trainingView(seed: seed, epoch: epoch, index: indices[indices.startIndex + b])
            }
        }
    }

    /// Packs test images `range`, in file order, as seen through test view `view` (0: the
    /// centre crop; see `CropAssembler.centreView`), into `stored`.
    public func packTest(_ range: Range<Int>, view: Int = 0, into stored: StoredBatch) {
        precondition(range.count <= stored.capacity, "\(range.count) images into a batch of \(stored.capacity)")
        let (source, positions) = images.test(range)
        var testView: CropView?
        if case .paper(let a) = pipeline { testView = a.centreView(view) }
        Self.pack(positions, of: source, into: stored) { _ in testView }
    }

    /// Fills `batch` with test images `range` through test view `view`, here: `packTest`, then
    /// the expansion every rank runs.
    public func assembleTest(_ range: Range<Int>, view: Int = 0, into batch: Batch) {
        let stored = StoredBatch(format: format, capacity: range.count)
        packTest(range, view: view, into: stored)
        pipeline.expand(stored, count: range.count, into: batch)
    }

    /// Writes the records of images `positions` of `source`, each with `view(b)`.
    private static func pack(_ positions: ArraySlice<Int>, of source: LabeledImages, into stored: StoredBatch, view: (Int) -> CropView?) {
        source.pixels.withUnsafeBufferPointer { pixels in
            for (b, index) in positions.enumerated() {
                stored.write(b, label: source.labels[index], view: view(b), image: pixels.baseAddress! + index * source.imageSize)
            }
        }
    }
}
