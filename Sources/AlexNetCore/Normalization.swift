import Foundation
#if arch(x86_64) && canImport(_Builtin_intrinsics)
import _Builtin_intrinsics.intel
#endif

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
    /// Per-tile workspace of the backward pass: `dy * y / scale` of every channel.
    private let tile: Buffer
    /// Positions (of `n*H*W`) per tile: the backward pass's workspace of all channels, and the
    /// input rows a window reads, stay in L2 while windows are summed.
    private let tileLength: Int

    public init(layerName: String, shape: Shape, size: Int, alpha: Float, beta: Float, k: Float, groups: Int, maxBatch: Int) {
        precondition(shape.channels % groups == 0, "channels must divide into groups")
        self.layerName = layerName
        self.shape = shape
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.groups = groups
        tileLength = Self.tileLength(channels: shape.channels, positions: shape.planeSize * maxBatch)
        let buffers = Self.allocations(shape: shape, maxBatch: maxBatch)
        scale = Buffer(count: buffers.count(of: "denominators"))
        tile = Buffer(count: buffers.count(of: "tile"))
    }

    /// What an LRN allocates for batches of up to `maxBatch` images: the denominators of the
    /// forward pass, one per output element, kept for backward; and the backward pass's tile of
    /// every channel.
    public static func allocations(shape: Shape, maxBatch: Int) -> [Allocation] {
        let length = tileLength(channels: shape.channels, positions: elements(shape.planeSize, maxBatch))
        return [Allocation("denominators", count: elements(shape.size, maxBatch)), Allocation("tile", count: shape.channels * length)]
    }

    /// Positions per tile for `channels` channels: a workspace of about 512 KiB (half of a Zen 3
    /// or Skylake core's L2), in whole 16-lane vectors, and no more than the `positions` of the
    /// largest batch (`allocations` reports it). A tile is either whole vectors or longer
    /// than any batch's plane, so only the plane's last `count % 16` positions take the scalar
    /// remainder, whatever the tile length: the bits do not depend on it.
    public static func tileLength(channels: Int, positions: Int) -> Int {
        max(1, min(positions, max(16, (1 << 17) / max(channels, 1) / 16 * 16)))
    }

    /// Channels in the window of channel `c`, clamped to `c`'s group.
    @inline(__always)
    private func window(_ c: Int) -> ClosedRange<Int> {
        let perGroup = shape.channels / groups
        let first = c / perGroup * perGroup
        return max(first, c - size / 2)...min(first + perGroup - 1, c + size / 2)
    }

    /// `s^-beta`, with the paper's beta = 0.75 as two square roots, as the vector loops compute it.
    @inline(__always)
    private static func inversePower(_ s: Float, beta: Float) -> Float {
        if beta == 0.75 {
            let root = s.squareRoot()
            return 1 / (root * root.squareRoot())
        }
        return powf(s, -beta)
    }

    /// The rows of one channel's window within a tile: `count` rows of `rowStride` floats apart.
    private struct WindowRows {
        var first: UnsafePointer<Float>
        var count: Int
        var rowStride: Int

        /// `sum_rows f(row[i..<i+16])` (or of the one position `i`), added row by row in window
        /// order: the plain loop's order, so every lane and the scalar tail round alike.
        @inline(__always)
        func sum(at i: Int, _ f: (SIMD16<Float>) -> SIMD16<Float>) -> SIMD16<Float> {
            var total = SIMD16<Float>(repeating: 0)
            for r in 0..<count { total += f(load(first + r * rowStride + i)) }
            return total
        }

        @inline(__always)
        func sum(atPosition i: Int, _ f: (Float) -> Float) -> Float {
            var total: Float = 0
            for r in 0..<count { total += f(first[r * rowStride + i]) }
            return total
        }
    }

    /// The window of channel `c` within the tile that starts at `base` (channel rows `rowStride` apart).
    @inline(__always)
    private func windowRows(_ c: Int, in base: UnsafePointer<Float>, rowStride: Int) -> WindowRows {
        let w = window(c)
        return WindowRows(first: base + w.lowerBound * rowStride, count: w.count, rowStride: rowStride)
    }

    /// `s = k + alpha * sum_window a^2; y = a * s^-beta` over `count` positions of one channel,
    /// 16 lanes at a time, the window's squares summed in registers.
    @inline(__always)
    private static func normalize(_ count: Int, window: WindowRows, a: UnsafePointer<Float>, s: UnsafeMutablePointer<Float>,
                                  y: UnsafeMutablePointer<Float>, k: Float, alpha: Float, beta: Float) {
        var i = 0
        if beta == 0.75 {
            while i + 16 <= count {
                let base = SIMD16<Float>(repeating: k) + alpha * window.sum(at: i) { $0 * $0 }
                let root = squareRoot(base)
                store(base, s + i)
                store(load(a + i) / (root * squareRoot(root)), y + i)
                i += 16
            }
        }
        while i < count {
            s[i] = k + alpha * window.sum(atPosition: i) { $0 * $0 }
            y[i] = a[i] * inversePower(s[i], beta: beta)
            i += 1
        }
    }

    /// `d = g * s^-beta - factor * a * sum_window r` over `count` positions of one channel, 16 lanes at a time.
    @inline(__always)
    private static func inputGradient(_ count: Int, window: WindowRows, g: UnsafePointer<Float>, s: UnsafePointer<Float>,
                                      a: UnsafePointer<Float>, d: UnsafeMutablePointer<Float>, factor: Float, beta: Float) {
        var i = 0
        if beta == 0.75 {
            while i + 16 <= count {
                let base = load(s + i), root = squareRoot(base)
                let spread = window.sum(at: i) { $0 }
                store(load(g + i) / (root * squareRoot(root)) - factor * load(a + i) * spread, d + i)
                i += 16
            }
        }
        while i < count {
            d[i] = g[i] * inversePower(s[i], beta: beta) - factor * a[i] * window.sum(atPosition: i) { $0 }
            i += 1
        }
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        // Constants in locals: stores through pointers could alias self, which stops vectorising.
        let plane = shape.planeSize * n, (k, alpha, beta) = (self.k, self.alpha, self.beta)
        for first in stride(from: 0, to: plane, by: tileLength) {
            let count = min(tileLength, plane - first)
            for c in 0..<shape.channels {
                let offset = c * plane + first
                Self.normalize(count, window: windowRows(c, in: input + first, rowStride: plane), a: input + offset,
                               s: scale.pointer + offset, y: output + offset, k: k, alpha: alpha, beta: beta)
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
                Self.inputGradient(count, window: windowRows(c, in: t, rowStride: tileLength), g: dy + offset,
                                   s: scale.pointer + offset, a: input + offset, d: dx + offset, factor: factor, beta: beta)
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

/// The lanes' square roots, correctly rounded as `Float.squareRoot()` is, so the bits are the
/// same. On Linux `Float.squareRoot()` calls libm's `sqrtf` (which may set errno) one lane at a
/// time; SSE's `sqrtps` does four lanes in one instruction.
@inline(__always)
func squareRoot(_ x: SIMD16<Float>) -> SIMD16<Float> {
    #if arch(x86_64) && canImport(_Builtin_intrinsics)
    func four(_ v: SIMD4<Float>) -> SIMD4<Float> { _mm_sqrt_ps(v) }
    return SIMD16(lowHalf: SIMD8(lowHalf: four(x.lowHalf.lowHalf), highHalf: four(x.lowHalf.highHalf)),
                  highHalf: SIMD8(lowHalf: four(x.highHalf.lowHalf), highHalf: four(x.highHalf.highHalf)))
    #else
    return x.squareRoot()
    #endif
}
