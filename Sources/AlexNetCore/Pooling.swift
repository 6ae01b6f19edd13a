/// Max pooling (the paper's overlapping 3/2 by default), no padding.
///
/// input `[C, n, H, W]` -> output `[C, n, Ho, Wo]`; keeps the index of each window's maximum
/// (the first one on ties) for the backward pass.
public final class MaxPool: Stage {
    public let layerName: String
    public let inputShape: Shape
    public let outputShape: Shape
    public let size: Int
    public let stride: Int
    private let argmax: UnsafeMutablePointer<Int32>
    private let capacity: Int
    /// First output columns of the blocks of four that `fourWindows` computes (see `blocks`).
    private let blockStarts: [Int]

    public init(layerName: String, input: Shape, size: Int = 3, stride: Int = 2, maxBatch: Int) {
        self.layerName = layerName
        inputShape = input
        self.size = size
        self.stride = stride
        outputShape = Shape(channels: input.channels,
                            height: convolutionOutputSize(input: input.height, kernel: size, stride: stride, padding: 0),
                            width: convolutionOutputSize(input: input.width, kernel: size, stride: stride, padding: 0))
        capacity = outputShape.size * maxBatch
        blockStarts = Self.blocks(inputWidth: input.width, outputWidth: outputShape.width, size: size, stride: stride)
        argmax = .allocate(capacity: max(capacity, 1))
        argmax.initialize(repeating: 0, count: max(capacity, 1))
        AllocationCounter.allocated(capacity)
    }

    /// What a max pool allocates for batches of up to `maxBatch` images: the argmax (Int32),
    /// one per output element, for the backward pass.
    public static func allocations(output: Shape, maxBatch: Int) -> [Allocation] {
        [Allocation("argmax", count: elements(output.size, maxBatch))]
    }

    deinit {
        argmax.deallocate()
        AllocationCounter.freed(capacity)
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        let starts = blockStarts, vectorColumns = starts.last.map { $0 + 4 } ?? 0
        for plane in 0..<inputShape.channels * n {
            let x = input + plane * h * w
            let y = output + plane * oh * ow
            let index = argmax + plane * oh * ow
            for i in 0..<oh {
                for j in starts {
                    let (value, best) = fourWindows(x, row: i, column: j)
                    UnsafeMutableRawPointer(y + i * ow + j).storeBytes(of: value, as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(index + i * ow + j).storeBytes(of: best, as: SIMD4<Int32>.self)
                }
                for j in vectorColumns..<ow {
                    (y[i * ow + j], index[i * ow + j]) = window(x, row: i, column: j)
                }
            }
        }
    }

    /// With stride 2, four neighbouring windows' pixels at one offset are every other float of
    /// eight: one load. Blocks of four whose loads stay inside the row (a block at column j
    /// reads up to input column 2j + size + 6); a ragged end is one more block that overlaps
    /// the last (its windows computed twice, alike); what is left goes one window at a time.
    static func blocks(inputWidth w: Int, outputWidth ow: Int, size: Int, stride: Int) -> [Int] {
        let lastStart = w - size - 7  // the largest 2j allowed
        guard stride == 2, lastStart >= 0 else { return [] }
        var starts = Array(Swift.stride(from: 0, through: min(ow - 4, lastStart / 2), by: 4))
        if let last = starts.last, last + 4 < ow, 2 * (ow - 4) <= lastStart { starts.append(ow - 4) }
        return starts
    }

    /// The maximum of output `(i, j)`'s window and its index in the plane, the first in row
    /// order on ties.
    @inline(__always)
    private func window(_ x: UnsafePointer<Float>, row i: Int, column j: Int) -> (Float, Int32) {
        let w = inputShape.width
        var best = (i * stride) * w + j * stride
        var value = x[best]
        for di in 0..<size {
            let row = (i * stride + di) * w + j * stride
            for dj in 0..<size where x[row + dj] > value {
                value = x[row + dj]
                best = row + dj
            }
        }
        return (value, Int32(best))
    }

    /// `window` for outputs `(i, j..<j+4)` of a stride-2 pool at once, by compares and selects
    /// across the four (the same rule: a later pixel wins only when strictly larger). One
    /// window's nine selects form a chain of dependent instructions, which made a scalar
    /// branch-free version slower than the branches; four windows per chain, and the chains of
    /// neighbouring column blocks independent, it is faster.
    @inline(__always)
    private func fourWindows(_ x: UnsafePointer<Float>, row i: Int, column j: Int) -> (SIMD4<Float>, SIMD4<Int32>) {
        let w = inputShape.width
        let corner = (i * 2) * w + j * 2
        var value = UnsafeRawPointer(x + corner).loadUnaligned(as: SIMD8<Float>.self).evenHalf
        var best = SIMD4<Int32>(0, 2, 4, 6) &+ Int32(corner)
        for di in 0..<size {
            for dj in 0..<size where di + dj > 0 {
                let offset = corner + di * w + dj
                let v = UnsafeRawPointer(x + offset).loadUnaligned(as: SIMD8<Float>.self).evenHalf
                let better = v .> value
                value.replace(with: v, where: better)
                best.replace(with: SIMD4<Int32>(0, 2, 4, 6) &+ Int32(offset), where: better)
            }
        }
        return (value, best)
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        let inPlane = inputShape.planeSize, outPlane = outputShape.planeSize
        dx.update(repeating: 0, count: inputShape.size * n)
        for plane in 0..<inputShape.channels * n {
            let d = dx + plane * inPlane
            let index = argmax + plane * outPlane
            let g = dy + plane * outPlane
            for o in 0..<outPlane { d[Int(index[o])] += g[o] }
        }
    }
}
