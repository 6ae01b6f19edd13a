/// Resizing with a triangle (bilinear) filter that widens when it shrinks, so a photo scaled
/// down from several megapixels averages its pixels instead of aliasing: the method of PIL's
/// and torchvision's `resize(..., antialias=True)`.
public enum Resample {
    /// Taps of one output index: the first input index and the weights from there on.
    struct Taps {
        var first: Int
        var weights: [Float]
    }

    /// For each output index in `outputs` (of `0..<output`): its input taps, `input` pixels wide.
    /// Only the indices asked for are worked out, so a long side scaled to millions of pixels (a
    /// 65536 x 1 photo at S = 256) costs what its centre square costs.
    static func taps(input: Int, output: Int, outputs: Range<Int>) -> [Taps] {
        let scale = Double(input) / Double(output)
        let support = max(scale, 1)
        return outputs.map { i in
            let centre = (Double(i) + 0.5) * scale
            let low = max(Int((centre - support).rounded(.down)), 0)
            let high = min(Int((centre + support).rounded(.up)), input)
            var weights = (low..<high).map { x in max(0, 1 - abs((Double(x) + 0.5 - centre) / support)) }
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
            return Taps(first: low, weights: weights.map { Float($0) })
        }
    }

    /// The scaled size (shorter side `size`) of a `width x height` image, before the crop.
    static func scaledSize(width w: Int, height h: Int, size: Int) -> (width: Int, height: Int) {
        let scaledH = h <= w ? size : max(size, Int(min(Double(h) * Double(size) / Double(w), 0x1p52).rounded()))
        let scaledW = w <= h ? size : max(size, Int(min(Double(w) * Double(size) / Double(h), 0x1p52).rounded()))
        return (scaledW, scaledH)
    }

    /// The central `size` taps of a side `input` pixels long scaled to `scaled`.
    static func centreTaps(input: Int, scaled: Int, size: Int) -> [Taps] {
        let first = (scaled - size) / 2
        return taps(input: input, output: scaled, outputs: first..<(first + size))
    }

    /// Bytes the resampling of a `width x height` photo holds beyond the photo and the square:
    /// the horizontal pass's floats over the input rows the square reads, and the taps.
    public static func workBytes(width: Int, height: Int, channels: Int, size: Int) -> Int {
        let rows = centreTaps(input: height, scaled: scaledSize(width: width, height: height, size: size).height, size: size)
        let span = rows.isEmpty ? 0 : (rows.map { $0.first + $0.weights.count }.max()! - rows.map(\.first).min()!)
        let weights = centreTaps(input: width, scaled: scaledSize(width: width, height: height, size: size).width, size: size)
            .reduce(0) { $0 + $1.weights.count } + rows.reduce(0) { $0 + $1.weights.count }
        return span * size * channels * 4 + weights * 4 + 2 * size * 64
    }

    /// The paper's preparation: scales `image` so that its shorter side is `size`, then cuts
    /// the central `size` x `size` square. Returns `size * size * channels` bytes, interleaved.
    public static func shorterSideThenCentreCrop(_ image: DecodedImage, size: Int) -> [UInt8] {
        let (h, w, c) = (image.height, image.width, image.channels)
        let scaled = scaledSize(width: w, height: h, size: size)
        let rows = centreTaps(input: h, scaled: scaled.height, size: size)
        let columns = centreTaps(input: w, scaled: scaled.width, size: size)
        // Horizontal pass into floats over the input rows the square reads (rows top...bottom),
        // then the vertical pass with rounding.
        let top = rows.map(\.first).min() ?? 0, bottom = rows.map { $0.first + $0.weights.count }.max() ?? 0
        var across = [Float](repeating: 0, count: (bottom - top) * size * c)
        image.pixels.withUnsafeBufferPointer { source in
            for y in top..<bottom {
                let row = source.baseAddress! + y * w * c
                for (j, tap) in columns.enumerated() {
                    for channel in 0..<c {
                        var sum: Float = 0
                        for (k, weight) in tap.weights.enumerated() { sum += weight * Float(row[(tap.first + k) * c + channel]) }
                        across[((y - top) * size + j) * c + channel] = sum
                    }
                }
            }
        }
        var result = [UInt8](repeating: 0, count: size * size * c)
        for (i, tap) in rows.enumerated() {
            for j in 0..<(size * c) {
                var sum: Float = 0
                for (k, weight) in tap.weights.enumerated() { sum += weight * across[(tap.first - top + k) * size * c + j] }
                result[i * size * c + j] = UInt8(min(max(sum.rounded(), 0), 255))
            }
        }
        return result
    }

    /// Every image of `images` scaled and centre-cropped to `size` x `size`.
    public static func shorterSideThenCentreCrop(_ images: LabeledImages, size: Int) -> LabeledImages {
        guard images.height != size || images.width != size else { return images }
        var pixels: [UInt8] = []
        pixels.reserveCapacity(images.count * size * size * images.channels)
        for i in 0..<images.count {
            let start = i * images.imageSize
            let image = DecodedImage(width: images.width, height: images.height, channels: images.channels,
                                     pixels: Array(images.pixels[start..<(start + images.imageSize)]))
            pixels += shorterSideThenCentreCrop(image, size: size)
        }
        return LabeledImages(height: size, width: size, channels: images.channels, pixels: pixels, labels: images.labels)
    }
}
