import AlexNetComm
import AlexNetCore

/// The two ways of making inputs from stored images (see `Preprocessing`): the coordinator
/// draws with it, and every rank makes its float batch from the hand-out's records with it.
public enum InputPipeline: Sendable {
    case resize(BatchAssembler)
    case paper(CropAssembler)

    /// Fills `batch` with the float inputs and labels of `stored`'s first `n` records, with the
    /// same arithmetic as the coordinator's assembler on its own images.
    public func expand(_ stored: StoredBatch, count n: Int, into batch: Batch) {
        precondition(n <= batch.capacity, "\(n) images into a batch of \(batch.capacity)")
        batch.count = n
        for b in 0..<n { batch.labels[b] = stored.label(b) }
        switch self {
        case .resize(let a):
            a.assemble(count: n, sourceChannels: stored.format.channels, image: stored.image, pixels: batch.pixels.pointer)
        case .paper(let a):
            a.assemble(count: n, image: stored.image, view: stored.view, pixels: batch.pixels.pointer)
        }
    }

    /// What it normalises with, for checkpoints.
    public var statistics: InputStatistics {
        switch self {
        case .resize(let a): return InputStatistics(normalization: (a.mean, a.std), photo: nil)
        case .paper(let a): return InputStatistics(normalization: nil, photo: a.statistics)
        }
    }

    /// The pipeline of `statistics` for `layout`'s stored images and inputs of `input`.
    public init(layout: DataLayout, input: Shape, statistics: InputStatistics, augmentation: Augmentation) {
        switch layout.preprocessing {
        case .resize:
            let (mean, std) = statistics.normalization!
            self = .resize(BatchAssembler(sourceHeight: layout.imageSize, sourceWidth: layout.imageSize, channels: input.channels,
                                          height: input.height, width: input.width, mean: mean, std: std))
        case .paper:
            self = .paper(CropAssembler(statistics: statistics.photo!, channels: input.channels, height: input.height,
                                        width: input.width, augmentation: augmentation))
        }
    }

    /// Rank 0's pipeline, on every rank of `comm` (a collective): its statistics travel once,
    /// as floats, which every rank knows how many of from `layout`. The other ranks only apply
    /// draws, so their pipeline has no augmentation of its own.
    public static func shared(_ mine: InputPipeline?, layout: DataLayout, input: Shape, over comm: Communicator) -> InputPipeline {
        if comm.size == 1, let mine { return mine }
        let (s, c) = (layout.imageSize, layout.channels)
        var values = [Float](repeating: 0, count: layout.preprocessing == .resize ? 2 : c * s * s + 1 + c + c * c + 1)
        if comm.rank == 0 { values = mine!.statistics.floats(layout: layout) }
        comm.broadcast(&values, root: 0)
        if comm.rank == 0 { return mine! }
        return InputPipeline(layout: layout, input: input, statistics: InputStatistics(floats: values, layout: layout), augmentation: .off)
    }
}

extension InputStatistics {
    /// The statistics as one vector: `[mean, std]` for `resize`; for `paper` the mean image,
    /// the scale, the eigenvalues, the eigenvectors and the kind of mean.
    func floats(layout: DataLayout) -> [Float] {
        if let (mean, std) = normalization { return [mean, std] }
        let p = photo!
        return p.mean + [p.scale] + p.eigenvalues + p.eigenvectors + [Float(MeanKind.allCases.firstIndex(of: p.meanKind)!)]
    }

    init(floats v: [Float], layout: DataLayout) {
        guard layout.preprocessing == .paper else {
            self.init(normalization: (v[0], v[1]))
            return
        }
        let (s, c) = (layout.imageSize, layout.channels), m = c * s * s
        self.init(photo: PhotoStatistics(size: s, channels: c, meanKind: MeanKind.allCases[Int(v[m + 1 + c + c * c])],
                                         mean: Array(v[0..<m]), scale: v[m], eigenvalues: Array(v[(m + 1)..<(m + 1 + c)]),
                                         eigenvectors: Array(v[(m + 1 + c)..<(m + 1 + c + c * c)])))
    }
}
