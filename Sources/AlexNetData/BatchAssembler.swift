/// Turns 8-bit images into a network's input batch: bilinear resize to the network's size,
/// normalise, channel-major `[C, n, H, W]`; a grey image is repeated across the channels.
///
/// The resize is PyTorch's `interpolate(mode="bilinear", align_corners=False)`: output pixel
/// centres map to `(i + 0.5) * in/out - 0.5`, clamped at the borders. Its weights are computed
/// once here, so assembling a batch costs four multiply-adds per output pixel.
public struct BatchAssembler: Sendable {
    public let sourceHeight: Int, sourceWidth: Int
    public let channels: Int, height: Int, width: Int
    public let mean: Float, std: Float
    private let rows: [(Int, Int, Float)]
    private let columns: [(Int, Int, Float)]

    public init(sourceHeight: Int, sourceWidth: Int, channels: Int, height: Int, width: Int, mean: Float, std: Float) {
        self.sourceHeight = sourceHeight
        self.sourceWidth = sourceWidth
        self.channels = channels
        self.height = height
        self.width = width
        self.mean = mean
        self.std = std
        rows = BatchAssembler.taps(input: sourceHeight, output: height)
        columns = BatchAssembler.taps(input: sourceWidth, output: width)
    }

    /// For each output index: the two input indices and the weight of the second.
    static func taps(input: Int, output: Int) -> [(Int, Int, Float)] {
        let scale = Double(input) / Double(output)
        return (0..<output).map { i in
            let x = max((Double(i) + 0.5) * scale - 0.5, 0)
            let lower = min(Int(x), input - 1)
            let upper = min(lower + 1, input - 1)
            return (lower, upper, Float(x - Double(lower)))
        }
    }

    /// Writes images `indices` of `images` into `pixels` (`[channels, n, height, width]`) and
    /// their labels into `labels`.
    public func assemble(_ indices: ArraySlice<Int>, from images: LabeledImages,
                         pixels: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>) {
        precondition(images.height == sourceHeight && images.width == sourceWidth)
        let positions = Array(indices)
        images.pixels.withUnsafeBufferPointer { source in
            for (b, index) in positions.enumerated() { labels[b] = images.labels[index] }
            assemble(count: positions.count, sourceChannels: images.channels,
                     image: { source.baseAddress! + positions[$0] * images.imageSize }, pixels: pixels)
        }
    }

    /// Writes `n` stored images (`image(b)`: sourceHeight x sourceWidth x sourceChannels bytes,
    /// channels interleaved) into `pixels` (`[channels, n, height, width]`): the arithmetic of
    /// every input this assembler makes, on the coordinator or on a tower rank.
    public func assemble(count n: Int, sourceChannels sc: Int, image: (Int) -> UnsafePointer<UInt8>,
                         pixels: UnsafeMutablePointer<Float>) {
        let plane = height * width
        let scale = 1 / (255 * std), shift = mean / std
        precondition(sc == 1 || sc == channels)
        for b in 0..<n {
            let image = image(b)
            for k in 0..<sc {
                let out = pixels + (k * n + b) * plane
                for (i, (r0, r1, wr)) in rows.enumerated() {
                    for (j, (c0, c1, wc)) in columns.enumerated() {
                        let top = Float(image[(r0 * sourceWidth + c0) * sc + k]) * (1 - wc) + Float(image[(r0 * sourceWidth + c1) * sc + k]) * wc
                        let bottom = Float(image[(r1 * sourceWidth + c0) * sc + k]) * (1 - wc) + Float(image[(r1 * sourceWidth + c1) * sc + k]) * wc
                        out[i * width + j] = (top * (1 - wr) + bottom * wr) * scale - shift
                    }
                }
            }
            let out = pixels + b * plane
            for c in sc..<max(channels, 1) {
                (pixels + (c * n + b) * plane).update(from: out, count: plane)
            }
        }
    }
}
