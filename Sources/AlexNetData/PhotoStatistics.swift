import Foundation

/// Which mean the paper's preprocessing subtracts.
public enum MeanKind: String, CaseIterable, Sendable, Codable {
    /// A mean image: one mean per pixel position and channel (the paper's).
    case pixel
    /// One mean per channel.
    case channel
    /// Nothing subtracted.
    case none
}

/// What the paper's preprocessing learns from the training set, once: the mean to subtract,
/// one scale to divide by, and the principal components of the pixel colours for the colour
/// noise. Computed over the stored `size x size` images.
public struct PhotoStatistics: Sendable, Equatable {
    public var size: Int
    public var channels: Int
    public var meanKind: MeanKind
    /// `[channels, size, size]`, in pixel units (0...255); constant per channel for `.channel`,
    /// zero for `.none`.
    public var mean: [Float]
    /// The root mean square of what is left after subtracting the mean, in pixel units: inputs
    /// are divided by it so that every preset's learning rate works unchanged.
    public var scale: Float
    /// Eigenvalues of the channel covariance of pixels scaled to [0, 1], largest first.
    public var eigenvalues: [Float]
    /// The matching unit eigenvectors: column i (`eigenvectors[c * channels + i]`) goes with
    /// eigenvalue i.
    public var eigenvectors: [Float]

    public init(size: Int, channels: Int, meanKind: MeanKind, mean: [Float], scale: Float, eigenvalues: [Float], eigenvectors: [Float]) {
        self.size = size
        self.channels = channels
        self.meanKind = meanKind
        self.mean = mean
        self.scale = scale
        self.eigenvalues = eigenvalues
        self.eigenvectors = eigenvectors
    }

    /// Statistics of `images`, which must all be `size x size`.
    public static func compute(_ images: LabeledImages, meanKind: MeanKind) -> PhotoStatistics {
        precondition(images.width == images.height && images.count > 0)
        var sums = PixelSums(size: images.height, channels: images.channels)
        images.pixels.withUnsafeBufferPointer { pixels in
            for i in 0..<images.count { sums.add(UnsafeBufferPointer(rebasing: pixels[(i * images.imageSize)..<((i + 1) * images.imageSize)])) }
        }
        return compute(sums, meanKind: meanKind)
    }

    /// Statistics from sums gathered image by image (`prepare` gathers them while it writes shards).
    public static func compute(_ pixelSums: PixelSums, meanKind: MeanKind) -> PhotoStatistics {
        precondition(pixelSums.count > 0)
        let (s, c) = (pixelSums.size, pixelSums.channels)
        let positions = s * s * c
        let sums = pixelSums.sums.map { Double($0) }, squares = pixelSums.squares.map { Double($0) }
        let channelSums = pixelSums.channelSums.map { Double($0) / 255 }
        let products = pixelSums.products.map { Double($0) / (255 * 255) }
        let n = Double(pixelSums.count), total = n * Double(s * s)
        // Interleaved sums to a channel-major mean.
        var mean = [Float](repeating: 0, count: positions)
        var residual = 0.0
        switch meanKind {
        case .pixel:
            for p in 0..<(s * s) {
                for k in 0..<c {
                    let m = sums[p * c + k] / n
                    mean[k * s * s + p] = Float(m)
                    residual += squares[p * c + k] - n * m * m
                }
            }
        case .channel:
            for k in 0..<c {
                var (sum, square) = (0.0, 0.0)
                for p in 0..<(s * s) {
                    sum += sums[p * c + k]
                    square += squares[p * c + k]
                }
                let m = sum / total
                for p in 0..<(s * s) { mean[k * s * s + p] = Float(m) }
                residual += square - total * m * m
            }
        case .none:
            residual = squares.reduce(0, +)
        }
        let scale = Float(max(residual / (total * Double(c)), 1e-6).squareRoot())
        var covariance = [Double](repeating: 0, count: c * c)
        for a in 0..<c {
            for b in 0..<c {
                covariance[a * c + b] = products[a * c + b] / total - (channelSums[a] / total) * (channelSums[b] / total)
            }
        }
        let (values, vectors) = symmetricEigen(covariance, size: c)
        return PhotoStatistics(size: s, channels: c, meanKind: meanKind, mean: mean, scale: scale,
                               eigenvalues: values.map { Float($0) }, eigenvectors: vectors.map { Float($0) })
    }

    /// Eigenvalues (largest first) and unit eigenvectors (as columns) of a symmetric matrix, by
    /// cyclic Jacobi rotations: plenty for a 3x3 colour covariance.
    public static func symmetricEigen(_ matrix: [Double], size n: Int) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<50 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(n, p + 1) where q < n { off += a[p * n + q] * a[p * n + q] } }
            if off < 1e-30 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(n, p + 1) where q < n && a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let cosine = 1 / (t * t + 1).squareRoot(), sine = t * cosine
                    for k in 0..<n {  // A <- A J (columns p, q)
                        let (akp, akq) = (a[k * n + p], a[k * n + q])
                        a[k * n + p] = cosine * akp - sine * akq
                        a[k * n + q] = sine * akp + cosine * akq
                    }
                    for k in 0..<n {  // A <- J^T A (rows p, q)
                        let (apk, aqk) = (a[p * n + k], a[q * n + k])
                        a[p * n + k] = cosine * apk - sine * aqk
                        a[q * n + k] = sine * apk + cosine * aqk
                    }
                    for k in 0..<n {
                        let (vkp, vkq) = (v[k * n + p], v[k * n + q])
                        v[k * n + p] = cosine * vkp - sine * vkq
                        v[k * n + q] = sine * vkp + cosine * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] }
        let values = order.map { max(a[$0 * n + $0], 0) }
        var vectors = [Double](repeating: 0, count: n * n)
        for (column, source) in order.enumerated() { for k in 0..<n { vectors[k * n + column] = v[k * n + source] } }
        return (values, vectors)
    }
}
