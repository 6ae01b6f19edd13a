import AlexNetCore
import Foundation

/// Which of the paper's training augmentations are on; each can be switched off alone.
public struct Augmentation: Sendable, Equatable, Codable {
    /// Random crops of the input size (off: the centre crop).
    public var randomCrop = true
    /// Horizontal mirror images, half the time.
    public var mirror = true
    /// PCA colour noise: alpha_i ~ N(0, colourNoise) on each principal component (0: off).
    public var colourNoise: Float = 0.1

    public init() {}
    /// No augmentation at all.
    public static var off: Augmentation {
        var a = Augmentation()
        a.randomCrop = false
        a.mirror = false
        a.colourNoise = 0
        return a
    }
}

/// Where one image's input comes from: the crop's corner, whether it is mirrored, and the
/// colour noise added to each channel (pixel units).
public struct CropView: Sendable, Equatable {
    public var x: Int, y: Int
    public var mirrored: Bool
    public var noise: [Float]

    public init(x: Int, y: Int, mirrored: Bool, noise: [Float]) {
        self.x = x
        self.y = y
        self.mirrored = mirrored
        self.noise = noise
    }
}

/// The paper's preprocessing (§2, §4.1) from stored `S x S` squares to the network's input:
/// a crop of the input size, maybe mirrored, plus colour noise, minus the mean, divided by one
/// scale; written channel-major `[C, n, H, W]`. Grey squares are repeated across the input's
/// channels.
public struct CropAssembler: Sendable {
    public let statistics: PhotoStatistics
    public let channels: Int, height: Int, width: Int
    public let augmentation: Augmentation

    public init(statistics: PhotoStatistics, channels: Int, height: Int, width: Int, augmentation: Augmentation) {
        precondition(statistics.size >= height && statistics.size >= width)
        precondition(statistics.channels == 1 || statistics.channels == channels)
        self.statistics = statistics
        self.channels = channels
        self.height = height
        self.width = width
        self.augmentation = augmentation
    }

    /// The training view of image `index` in `epoch`: drawn from a generator keyed by
    /// (seed, epoch, image), so it is the same whichever thread or rank computes it, and every
    /// draw is made even when its augmentation is off, so switching one off leaves the others.
    public func trainingView(seed: UInt64, epoch: Int, index: Int) -> CropView {
        var random = KeyedRandom(seed, 0x4155_4720, UInt64(epoch), UInt64(index))  // "AUG "
        let s = statistics.size
        let x = random.below(s - width + 1), y = random.below(s - height + 1)
        let mirror = random.below(2) == 1
        let alphas = (0..<statistics.channels).map { _ in Float(random.normal()) * augmentation.colourNoise }
        let centre = centreView(0)
        return CropView(x: augmentation.randomCrop ? x : centre.x, y: augmentation.randomCrop ? y : centre.y,
                        mirrored: augmentation.mirror && mirror, noise: colourNoise(alphas: alphas))
    }

    /// The noise `sum_i alpha_i lambda_i p_i`, computed on pixels in [0, 1] and returned in pixel units.
    public func colourNoise(alphas: [Float]) -> [Float] {
        let c = statistics.channels
        return (0..<c).map { k in
            255 * (0..<c).reduce(Float(0)) { $0 + statistics.eigenvectors[k * c + $1] * alphas[$1] * statistics.eigenvalues[$1] }
        }
    }

    /// The test view: the centre crop.
    public var testView: CropView { centreView(0) }

    /// View `v` of the paper's ten test patches: 0 centre, 1...4 the corners (top left, top
    /// right, bottom left, bottom right); 5...9 the same mirrored.
    public func centreView(_ v: Int) -> CropView {
        let s = statistics.size
        let (right, bottom) = (s - width, s - height)
        let corners = [(right / 2, bottom / 2), (0, 0), (right, 0), (0, bottom), (right, bottom)]
        let (x, y) = corners[v % 5]
        return CropView(x: x, y: y, mirrored: v >= 5, noise: [Float](repeating: 0, count: statistics.channels))
    }

    /// Writes images `indices` of `images` as seen through `view(b, index)` into `pixels`
    /// (`[channels, n, height, width]`) and their labels into `labels`.
    public func assemble(_ indices: ArraySlice<Int>, from images: LabeledImages, view: (Int, Int) -> CropView,
                         pixels: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>) {
        precondition(images.height == statistics.size && images.width == statistics.size && images.channels == statistics.channels)
        let positions = Array(indices)
        images.pixels.withUnsafeBufferPointer { source in
            for (b, index) in positions.enumerated() { labels[b] = images.labels[index] }
            assemble(count: positions.count, image: { source.baseAddress! + positions[$0] * images.imageSize },
                     view: { view($0, positions[$0]) }, pixels: pixels)
        }
    }

    /// Writes `n` stored squares (`image(b)`: S x S x channels bytes, channels interleaved) as
    /// seen through `view(b)` into `pixels` (`[channels, n, height, width]`): the arithmetic of
    /// every input this assembler makes, on the coordinator or on a tower rank.
    public func assemble(count n: Int, image: (Int) -> UnsafePointer<UInt8>, view: (Int) -> CropView,
                         pixels: UnsafeMutablePointer<Float>) {
        let s = statistics.size, sc = statistics.channels, plane = height * width
        let inverse = 1 / statistics.scale
        statistics.mean.withUnsafeBufferPointer { mean in
            for b in 0..<n {
                let v = view(b)
                let image = image(b)
                for k in 0..<sc {
                    let out = pixels + (k * n + b) * plane
                    let meanPlane = mean.baseAddress! + k * s * s
                    for y in 0..<height {
                        let row = (v.y + y) * s
                        for x in 0..<width {
                            let sx = v.x + (v.mirrored ? width - 1 - x : x)
                            out[y * width + x] = (Float(image[(row + sx) * sc + k]) + v.noise[k] - meanPlane[row + sx]) * inverse
                        }
                    }
                }
                for k in sc..<channels {  // grey repeated
                    (pixels + (k * n + b) * plane).update(from: pixels + b * plane, count: plane)
                }
            }
        }
    }
}
