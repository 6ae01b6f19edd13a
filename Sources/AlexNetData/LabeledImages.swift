/// Grey images of one size with a class label each, as 8-bit pixels.
public struct LabeledImages: Sendable {
    public var count: Int { labels.count }
    public let height: Int
    public let width: Int
    /// `count * height * width` pixels, image-major.
    public let pixels: [UInt8]
    public let labels: [UInt8]

    public init(height: Int, width: Int, pixels: [UInt8], labels: [UInt8]) {
        precondition(pixels.count == labels.count * height * width)
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
    }

    /// The first `limit` images (all when nil or larger).
    public func prefix(_ limit: Int?) -> LabeledImages {
        guard let limit, limit < count else { return self }
        return LabeledImages(height: height, width: width, pixels: Array(pixels[0..<(limit * height * width)]),
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
    public let train: LabeledImages
    public let test: LabeledImages
    public let classNames: [String]
    public var classes: Int { classNames.count }

    public init(name: String, train: LabeledImages, test: LabeledImages, classNames: [String]) {
        self.name = name
        self.train = train
        self.test = test
        self.classNames = classNames
    }
}
