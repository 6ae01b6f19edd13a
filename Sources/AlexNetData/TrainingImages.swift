/// The images a run reads: decoded into memory (small data sets, and every format but shards),
/// or streamed from shards by a bounded read-ahead (data sets too large to hold).
public struct TrainingImages: Sendable {
    public enum Storage: Sendable {
        case memory(DataSet)
        /// The first `trainCount` and `testCount` photos of the shards' splits.
        case streamed(ShardSet, trainCount: Int, testCount: Int)
    }

    public let storage: Storage
    /// For shards: `prepare`'s sums over the whole training split, which both paths use for the
    /// mean and colour PCA, so that a data set gives the same numbers in memory and streamed.
    public let pixelSums: PixelSums?

    public init(_ data: DataSet, pixelSums: PixelSums? = nil) {
        storage = .memory(data)
        self.pixelSums = pixelSums
    }

    public init(streaming shards: ShardSet, trainLimit: Int?, testLimit: Int?) {
        storage = .streamed(shards, trainCount: min(shards.train.count, trainLimit ?? .max), testCount: min(shards.val.count, testLimit ?? .max))
        pixelSums = shards.pixelSums
    }

    public var name: String {
        switch storage {
        case .memory(let data): return data.name
        case .streamed(let shards, _, _): return shards.manifest.name
        }
    }

    public var classNames: [String] {
        switch storage {
        case .memory(let data): return data.classNames
        case .streamed(let shards, _, _): return shards.manifest.classNames
        }
    }

    public var skipped: [String] {
        switch storage {
        case .memory(let data): return data.skipped
        case .streamed(let shards, _, _): return shards.manifest.skipped
        }
    }

    public var classes: Int { classNames.count }

    public var trainCount: Int {
        switch storage {
        case .memory(let data): return data.train.count
        case .streamed(_, let count, _): return count
        }
    }

    public var testCount: Int {
        switch storage {
        case .memory(let data): return data.test.count
        case .streamed(_, _, let count): return count
        }
    }
}

extension PixelSums {
    /// The mean and standard deviation of every pixel value, scaled to [0, 1] (what
    /// `LabeledImages.pixelStatistics` gives for the same images).
    public func meanAndDeviation() -> (mean: Float, std: Float) {
        let n = Double(count) * Double(sums.count)
        let mean = Double(sums.reduce(0, +)) / 255 / max(n, 1)
        let square = Double(squares.reduce(0, +)) / (255 * 255) / max(n, 1)
        return (Float(mean), Float(max(square - mean * mean, 1e-12).squareRoot()))
    }
}
