import Foundation

/// Local response normalisation across channels, with the paper's formula (§3.3):
/// `b_c = a_c / (k + alpha * sum_{c' in window(c)} a_{c'}^2)^beta`, a window of `size`
/// channels centred on `c`.
///
/// alpha is not divided by the window size (PyTorch and Caffe do divide). The window never
/// leaves its group of `channels/groups` channels: a tower's LRN sees only its own kernels,
/// as cuda-convnet's `rnorm1` with `channels=48`.
/// input `[C, n, H, W]` -> output of the same shape.
public final class LocalResponseNorm: Stage {
    public let layerName: String
    public let shape: Shape
    public let size: Int
    public let alpha: Float
    public let beta: Float
    public let k: Float
    public let groups: Int
    /// The denominator's base `k + alpha * sum a^2`, kept for backward.
    private let scale: Buffer
    /// Per-tile workspace: squares in forward, `dy * y / scale` in backward, for every channel.
    private let tile: Buffer
    /// Positions (of `n*H*W`) per tile: all channels of a tile stay in L2 while windows are summed.
    private let tileLength = 256

    public init(layerName: String, shape: Shape, size: Int, alpha: Float, beta: Float, k: Float, groups: Int, maxBatch: Int) {
        precondition(shape.channels % groups == 0, "channels must divide into groups")
        self.layerName = layerName
        self.shape = shape
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.groups = groups
        scale = Buffer(count: shape.size * maxBatch)
        tile = Buffer(count: shape.channels * tileLength)
    }

    /// Channels in the window of channel `c`, clamped to `c`'s group.
    @inline(__always)
    private func window(_ c: Int) -> ClosedRange<Int> {
        let perGroup = shape.channels / groups
        let first = c / perGroup * perGroup
        return max(first, c - size / 2)...min(first + perGroup - 1, c + size / 2)
    }

    /// `s^-beta`, with the paper's beta = 0.75 as two square roots (it vectorises; powf does not).
    @inline(__always)
    private static func inversePower(_ s: Float, beta: Float) -> Float {
        if beta == 0.75 {
            let root = s.squareRoot()
            return 1 / (root * root.squareRoot())
        }
        return powf(s, -beta)
    }

    /// `s = k + alpha*s; y = a * s^-beta` over `count` elements, 16 lanes at a time.
    @inline(__always)
    private static func normalize(_ count: Int, a: UnsafePointer<Float>, s: UnsafeMutablePointer<Float>,
                                  y: UnsafeMutablePointer<Float>, k: Float, alpha: Float, beta: Float) {
        var i = 0
        if beta == 0.75 {
            while i + 16 <= count {
                let base = SIMD16<Float>(repeating: k) + alpha * load(s + i)
                let root = base.squareRoot()
                store(base, s + i)
                store(load(a + i) / (root * root.squareRoot()), y + i)
                i += 16
            }
        }
        while i < count {
            s[i] = k + alpha * s[i]
            y[i] = a[i] * inversePower(s[i], beta: beta)
            i += 1
        }
    }

    /// `d = g * s^-beta - factor * a * d` over `count` elements, 16 lanes at a time.
    @inline(__always)
    private static func inputGradient(_ count: Int, g: UnsafePointer<Float>, s: UnsafePointer<Float>, a: UnsafePointer<Float>,
                                      d: UnsafeMutablePointer<Float>, factor: Float, beta: Float) {
        var i = 0
        if beta == 0.75 {
            while i + 16 <= count {
                let base = load(s + i), root = base.squareRoot()
                store(load(g + i) / (root * root.squareRoot()) - factor * load(a + i) * load(d + i), d + i)
                i += 16
            }
        }
        while i < count {
            d[i] = g[i] * inversePower(s[i], beta: beta) - factor * a[i] * d[i]
            i += 1
        }
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        // Constants in locals: stores through pointers could alias self, which stops vectorising.
        let plane = shape.planeSize * n, t = tile.pointer, (k, alpha, beta) = (self.k, self.alpha, self.beta)
        for first in stride(from: 0, to: plane, by: tileLength) {
            let count = min(tileLength, plane - first)
            for c in 0..<shape.channels {
                let a = input + c * plane + first, sq = t + c * tileLength
                for i in 0..<count { sq[i] = a[i] * a[i] }
            }
            for c in 0..<shape.channels {
                let a = input + c * plane + first, y = output + c * plane + first, s = scale.pointer + c * plane + first
                let w = window(c)
                for i in 0..<count { s[i] = 0 }
                for other in w {
                    let sq = t + other * tileLength
                    for i in 0..<count { s[i] += sq[i] }
                }
                Self.normalize(count, a: a, s: s, y: y, k: k, alpha: alpha, beta: beta)
            }
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        let plane = shape.planeSize * n, t = tile.pointer, beta = self.beta
        // dx_j = dy_j s_j^-beta - 2 alpha beta a_j sum_{i : j in window(i)} dy_i y_i / s_i,
        // and j is in window(i) exactly when i is in window(j).
        let factor = 2 * alpha * beta
        for first in stride(from: 0, to: plane, by: tileLength) {
            let count = min(tileLength, plane - first)
            for c in 0..<shape.channels {
                let offset = c * plane + first, r = t + c * tileLength
                let g = dy + offset, y = output + offset, s = scale.pointer + offset
                for i in 0..<count { r[i] = g[i] * y[i] / s[i] }
            }
            for c in 0..<shape.channels {
                let offset = c * plane + first
                let d = dx + offset, a = input + offset, s = scale.pointer + offset, g = dy + offset
                for i in 0..<count { d[i] = 0 }
                for other in window(c) {
                    let r = t + other * tileLength
                    for i in 0..<count { d[i] += r[i] }
                }
                Self.inputGradient(count, g: g, s: s, a: a, d: d, factor: factor, beta: beta)
            }
        }
    }
}

@inline(__always)
func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

@inline(__always)
func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { load(UnsafePointer(p)) }

@inline(__always)
func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self) }
