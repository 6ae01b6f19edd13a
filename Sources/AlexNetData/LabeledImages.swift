/// Images of one size with a class label each, as 8-bit pixels, channels interleaved
/// (`[count, height, width, channels]`, as decoders write them).
public struct LabeledImages: Sendable {
    public var count: Int { labels.count }
    public let height: Int
    public let width: Int
    /// 1 (grey) or 3 (RGB).
    public let channels: Int
    /// `count * height * width * channels` pixels, image-major.
    public let pixels: [UInt8]
    public let labels: [Int32]

    public init(height: Int, width: Int, channels: Int = 1, pixels: [UInt8], labels: [Int32]) {
        precondition(pixels.count == labels.count * height * width * channels)
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.labels = labels
    }

    /// Bytes per image.
    public var imageSize: Int { height * width * channels }

    /// The first `limit` images (all when nil or larger).
    public func prefix(_ limit: Int?) -> LabeledImages {
        guard let limit, limit < count else { return self }
        return LabeledImages(height: height, width: width, channels: channels, pixels: Array(pixels[0..<(limit * imageSize)]),
                             labels: Array(labels[0..<limit]))
    }

    /// Mean and standard deviation of all pixels, scaled to [0, 1].
    public func pixelStatistics() -> (mean: Float, std: Float) {
        var histogram = [Int](repeating: 0, count: 256)
        for p in pixels { histogram[Int(p)] += 1 }
        var sum = 0.0, squares = 0.0
        for (value, n) in histogram.enumerated() {
            let v = Double(value) / 255
            sum += v * Double(n)
            squares += v * v * Double(n)
        }
        let total = Double(max(pixels.count, 1))
        let mean = sum / total
        return (Float(mean), Float(max(squares / total - mean * mean, 1e-12).squareRoot()))
    }
}

/// Training and test splits of one data set.
public struct DataSet: Sendable {
    public let name: String
    public let format: DataFormat
    public let train: LabeledImages
    public let test: LabeledImages
    public let classNames: [String]
    /// Files that could not be read and were left out (`--skip-bad-images`), with why.
    public var skipped: [String] = []
    public var classes: Int { classNames.count }

    public init(name: String, format: DataFormat, train: LabeledImages, test: LabeledImages, classNames: [String], skipped: [String] = []) {
        self.name = name
        self.format = format
        self.train = train
        self.test = test
        self.classNames = classNames
        self.skipped = skipped
    }

    /// Both splits, each cut to its limit.
    public func limited(train trainLimit: Int?, test testLimit: Int?) -> DataSet {
        DataSet(name: name, format: format, train: train.prefix(trainLimit), test: test.prefix(testLimit),
                classNames: classNames, skipped: skipped)
    }
}
