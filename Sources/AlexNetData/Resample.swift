/// Resizing with a triangle (bilinear) filter that widens when it shrinks, so a photo scaled
/// down from several megapixels averages its pixels instead of aliasing: the method of PIL's
/// and torchvision's `resize(..., antialias=True)`.
public enum Resample {
    /// Taps of one output index: the first input index and the weights from there on.
    struct Taps {
        var first: Int
        var weights: [Float]
    }

    /// For each output index in `0..<output`: its input taps, `input` pixels wide.
    static func taps(input: Int, output: Int) -> [Taps] {
        let scale = Double(input) / Double(output)
        let support = max(scale, 1)
        return (0..<output).map { i in
            let centre = (Double(i) + 0.5) * scale
            let low = max(Int((centre - support).rounded(.down)), 0)
            let high = min(Int((centre + support).rounded(.up)), input)
            var weights = (low..<high).map { x in max(0, 1 - abs((Double(x) + 0.5 - centre) / support)) }
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
            return Taps(first: low, weights: weights.map { Float($0) })
        }
    }

    /// The paper's preparation: scales `image` so that its shorter side is `size`, then cuts
    /// the central `size` x `size` square. Returns `size * size * channels` bytes, interleaved.
    public static func shorterSideThenCentreCrop(_ image: DecodedImage, size: Int) -> [UInt8] {
        let (h, w, c) = (image.height, image.width, image.channels)
        let scaledH = h <= w ? size : max(size, Int((Double(h) * Double(size) / Double(w)).rounded()))
        let scaledW = w <= h ? size : max(size, Int((Double(w) * Double(size) / Double(h)).rounded()))
        let rows = Array(taps(input: h, output: scaledH)[((scaledH - size) / 2)...].prefix(size))
        let columns = Array(taps(input: w, output: scaledW)[((scaledW - size) / 2)...].prefix(size))
        // Horizontal pass into floats, then vertical pass with rounding.
        var across = [Float](repeating: 0, count: h * size * c)
        image.pixels.withUnsafeBufferPointer { source in
            for y in 0..<h {
                let row = source.baseAddress! + y * w * c
                for (j, tap) in columns.enumerated() {
                    for channel in 0..<c {
                        var sum: Float = 0
                        for (k, weight) in tap.weights.enumerated() { sum += weight * Float(row[(tap.first + k) * c + channel]) }
                        across[(y * size + j) * c + channel] = sum
                    }
                }
            }
        }
        var result = [UInt8](repeating: 0, count: size * size * c)
        for (i, tap) in rows.enumerated() {
            for j in 0..<(size * c) {
                var sum: Float = 0
                for (k, weight) in tap.weights.enumerated() { sum += weight * across[(tap.first + k) * size * c + j] }
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
