import CBLAS

/// Output size of a convolution or pooling window along one axis.
public func convolutionOutputSize(input: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (input + 2 * padding - kernel) / stride + 1
}

/// Range of output columns `ow` whose input column `ow*stride - padding + offset` lies in `0..<width`.
@inline(__always)
private func validColumns(width: Int, outWidth: Int, stride: Int, padding: Int, offset: Int) -> Range<Int> {
    let shift = padding - offset  // input column = ow*stride - shift
    let start = shift <= 0 ? 0 : (shift + stride - 1) / stride
    let last = width - 1 + shift
    let end = last < 0 ? 0 : min(outWidth, last / stride + 1)
    return start..<max(start, end)
}

/// Unfolds image patches into a matrix so that a convolution becomes one GEMM.
///
/// x: `[C, n, H, W]`; columns: `[C*k*k, n*Ho*Wo]`, row `(c, ki, kj)`, column `(b, oh, ow)`.
/// The batch is folded into the column dimension, so one GEMM covers the whole batch.
func im2col(_ x: UnsafePointer<Float>, channels: Int, batch n: Int, height: Int, width: Int,
            kernel k: Int, stride s: Int, padding p: Int, outHeight: Int, outWidth: Int,
            into columns: UnsafeMutablePointer<Float>) {
    let rowLength = n * outHeight * outWidth
    for c in 0..<channels {
        let plane = x + c * n * height * width
        for ki in 0..<k {
            for kj in 0..<k {
                let row = columns + ((c * k + ki) * k + kj) * rowLength
                let valid = validColumns(width: width, outWidth: outWidth, stride: s, padding: p, offset: kj)
                for b in 0..<n {
                    let image = plane + b * height * width
                    for oh in 0..<outHeight {
                        let dst = row + (b * outHeight + oh) * outWidth
                        let ih = oh * s - p + ki
                        if ih < 0 || ih >= height {
                            dst.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let src = image + ih * width - p + kj
                        if valid.lowerBound > 0 { dst.update(repeating: 0, count: valid.lowerBound) }
                        if s == 1 {
                            (dst + valid.lowerBound).update(from: src + valid.lowerBound, count: valid.count)
                        } else {
                            for ow in valid { dst[ow] = src[ow * s] }
                        }
                        if valid.upperBound < outWidth {
                            (dst + valid.upperBound).update(repeating: 0, count: outWidth - valid.upperBound)
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back onto the pixel it came from.
/// dx must be zeroed (or hold a gradient to add to) before the call.
func col2im(_ columns: UnsafePointer<Float>, channels: Int, batch n: Int, height: Int, width: Int,
            kernel k: Int, stride s: Int, padding p: Int, outHeight: Int, outWidth: Int,
            into dx: UnsafeMutablePointer<Float>) {
    let rowLength = n * outHeight * outWidth
    for c in 0..<channels {
        let plane = dx + c * n * height * width
        for ki in 0..<k {
            for kj in 0..<k {
                let row = columns + ((c * k + ki) * k + kj) * rowLength
                let valid = validColumns(width: width, outWidth: outWidth, stride: s, padding: p, offset: kj)
                for b in 0..<n {
                    let image = plane + b * height * width
                    for oh in 0..<outHeight {
                        let ih = oh * s - p + ki
                        if ih < 0 || ih >= height { continue }
                        let src = row + (b * outHeight + oh) * outWidth
                        let dst = image + ih * width - p + kj
                        for ow in valid { dst[ow * s] += src[ow] }
                    }
                }
            }
        }
    }
}

/// 2-D convolution with stride, padding and groups, as im2col plus one SGEMM per group.
///
/// weight `[O, C/groups, k, k]` (PyTorch's layout), bias `[O]`.
/// input `[C, n, H, W]` -> output `[O, n, Ho, Wo]`.
/// Group `g` reads input channels `g*C/groups ..< (g+1)*C/groups` and writes outputs
/// `g*O/groups ..< (g+1)*O/groups`: a tower, when the network holds several towers.
public final class Convolution: Stage {
    public let layerName: String
    public let inputShape: Shape
    public let outputShape: Shape
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let groups: Int
    public let weight: Parameter
    public let bias: Parameter
    public var parameters: [Parameter] { [weight, bias] }

    /// Unfolded input of every group, kept from forward for the weight gradient.
    private let columns: Buffer
    private let scratch: Scratch
    private let maxBatch: Int

    public init(layerName: String, input: Shape, outputs: Int, kernel: Int, stride: Int, padding: Int,
                groups: Int, maxBatch: Int, scratch: Scratch) {
        precondition(input.channels % groups == 0 && outputs % groups == 0, "channels must divide into groups")
        self.layerName = layerName
        inputShape = input
        outputShape = Shape(channels: outputs,
                            height: convolutionOutputSize(input: input.height, kernel: kernel, stride: stride, padding: padding),
                            width: convolutionOutputSize(input: input.width, kernel: kernel, stride: stride, padding: padding))
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.maxBatch = maxBatch
        self.scratch = scratch
        weight = Parameter(name: "\(layerName).weight", shape: [outputs, input.channels / groups, kernel, kernel])
        bias = Parameter(name: "\(layerName).bias", shape: [outputs])
        let rows = input.channels / groups * kernel * kernel
        columns = Buffer(count: groups * rows * maxBatch * outputShape.planeSize)
        scratch.reserve(rows * maxBatch * outputShape.planeSize)
    }

    private var rowsPerGroup: Int { inputShape.channels / groups * kernel * kernel }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let cg = inputShape.channels / groups, og = outputShape.channels / groups
        let length = n * outputShape.planeSize, rows = rowsPerGroup
        for g in 0..<groups {
            let cols = columns.pointer + g * rows * length
            im2col(input + g * cg * n * inputShape.planeSize, channels: cg, batch: n,
                   height: inputShape.height, width: inputShape.width, kernel: kernel, stride: stride, padding: padding,
                   outHeight: outputShape.height, outWidth: outputShape.width, into: cols)
            let y = output + g * og * length
            for o in 0..<og { (y + o * length).update(repeating: bias.value.pointer[g * og + o], count: length) }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(og), Int32(length), Int32(rows),
                        1, weight.value.pointer + g * og * rows, Int32(rows), cols, Int32(length), 1, y, Int32(length))
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        let cg = inputShape.channels / groups, og = outputShape.channels / groups
        let length = n * outputShape.planeSize, rows = rowsPerGroup
        if let dx { dx.update(repeating: 0, count: inputShape.size * n) }
        for g in 0..<groups {
            let cols = columns.pointer + g * rows * length
            let dyg = dy + g * og * length
            // dW_g [og, rows] = dY_g [og, length] * cols^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(og), Int32(rows), Int32(length),
                        1, dyg, Int32(length), cols, Int32(length), 0, weight.gradient.pointer + g * og * rows, Int32(rows))
            for o in 0..<og { bias.gradient.pointer[g * og + o] = sum(dyg + o * length, count: length) }
            guard let dx else { continue }
            // dcols [rows, length] = W_g^T * dY_g, then fold back onto the image.
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(length), Int32(og),
                        1, weight.value.pointer + g * og * rows, Int32(rows), dyg, Int32(length), 0, scratch.pointer, Int32(length))
            col2im(scratch.pointer, channels: cg, batch: n, height: inputShape.height, width: inputShape.width,
                   kernel: kernel, stride: stride, padding: padding,
                   outHeight: outputShape.height, outWidth: outputShape.width, into: dx + g * cg * n * inputShape.planeSize)
        }
    }
}

/// Sum of `count` floats, accumulated in Double so that long rows do not lose precision.
@inline(__always)
func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var total: Double = 0
    for i in 0..<count { total += Double(x[i]) }
    return Float(total)
}
