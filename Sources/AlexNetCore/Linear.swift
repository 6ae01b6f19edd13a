import CBLAS

/// Fully-connected layer, optionally grouped like a convolution.
///
/// weight `[O, F/groups]` (PyTorch's layout), bias `[O]`.
/// input `[F, n]` -> output `[O, n]`: features-major, so that the towers' halves of a layer's
/// output sit one after the other in memory.
public final class Linear: InputGradientFirst, GatheredInputFirst {
    public let layerName: String
    public let inputs: Int
    public let outputs: Int
    public let groups: Int
    public let weight: Parameter
    public let bias: Parameter
    public var parameters: [Parameter] { [weight, bias] }

    public init(layerName: String, inputs: Int, outputs: Int, groups: Int) {
        precondition(inputs % groups == 0 && outputs % groups == 0, "features must divide into groups")
        self.layerName = layerName
        self.inputs = inputs
        self.outputs = outputs
        self.groups = groups
        weight = Parameter(name: "\(layerName).weight", shape: [outputs, inputs / groups])
        bias = Parameter(name: "\(layerName).bias", shape: [outputs])
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let fg = inputs / groups, og = outputs / groups
        for o in 0..<outputs { (output + o * n).update(repeating: bias.value.pointer[o], count: n) }
        guard og > 0 else { return }  // a hybrid slice may hold no unit
        for g in 0..<groups {
            // Y_g [og, n] += W_g [og, fg] * X_g [fg, n]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(og), Int32(n), Int32(fg),
                        1, weight.value.pointer + g * og * fg, Int32(fg), input + g * fg * n, Int32(n),
                        1, output + g * og * n, Int32(n))
        }
    }

    /// `output = bias + W[:, own] X_own` (`GatheredInputFirst`; one group).
    public func forwardOwnChannels(localInput x: UnsafePointer<Float>, channels own: Range<Int>, output: UnsafeMutablePointer<Float>,
                                   batch n: Int, progress: () -> Void) {
        precondition(groups == 1, "\(layerName): a forward pass in parts takes one group")
        for o in 0..<outputs { (output + o * n).update(repeating: bias.value.pointer[o], count: n) }
        multiplyAdd(x, features: own, into: output, batch: n)
    }

    /// `output += W[:, block] X_block` for the other blocks of the gathered input.
    public func forwardOtherChannels(input: UnsafePointer<Float>, channels own: Range<Int>, output: UnsafeMutablePointer<Float>, batch n: Int) {
        for block in channels(inputs, except: own) { multiplyAdd(input + block.lowerBound * n, features: block, into: output, batch: n) }
    }

    /// `output += W[:, block] X_block`, `x` the block's `[block.count, n]`.
    private func multiplyAdd(_ x: UnsafePointer<Float>, features block: Range<Int>, into output: UnsafeMutablePointer<Float>, batch n: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outputs), Int32(n), Int32(block.count),
                    1, weight.value.pointer + block.lowerBound, Int32(inputs), x, Int32(n), 1, output, Int32(n))
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        backwardParameters(input: input, outputGradient: dy, batch: n, rowBlocks: false) {}
        if let dx { backwardInput(input: input, outputGradient: dy, inputGradient: dx, batch: n) }
    }

    /// dX_g [fg, n] = W_g^T * dY_g (`InputGradientFirst`).
    public func backwardInput(input: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                              inputGradient dx: UnsafeMutablePointer<Float>, batch n: Int) {
        let fg = inputs / groups, og = outputs / groups
        guard og > 0 else { return dx.update(repeating: 0, count: inputs * n) }  // no unit: no gradient
        for g in 0..<groups {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(fg), Int32(n), Int32(og),
                        1, weight.value.pointer + g * og * fg, Int32(fg), dy + g * og * n, Int32(n),
                        0, dx + g * fg * n, Int32(n))
        }
    }

    /// The bias gradient and dW_g [og, fg] = dY_g [og, n] * X_g^T, a block of rows at a time
    /// (`weightGradientRowBlocks`) with `progress` between them.
    public func backwardParameters(input: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>, batch n: Int,
                                   progress: () -> Void) {
        backwardParameters(input: input, outputGradient: dy, batch: n, rowBlocks: true, progress: progress)
    }

    private func backwardParameters(input: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>, batch n: Int,
                                    rowBlocks: Bool, progress: () -> Void) {
        let fg = inputs / groups, og = outputs / groups
        for o in 0..<outputs { bias.gradient.pointer[o] = sum(dy + o * n, count: n) }
        for g in 0..<groups {
            for block in rowBlocks ? weightGradientRowBlocks(og, multiplyAddsPerRow: fg * n) : [0..<og] {
                if block.lowerBound > 0 || g > 0 { progress() }
                let o = g * og + block.lowerBound
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(block.count), Int32(fg), Int32(n),
                            1, dy + o * n, Int32(n), input + g * fg * n, Int32(n),
                            0, weight.gradient.pointer + o * fg, Int32(fg))
            }
        }
    }
}

/// Turns `[C, n, H, W]` into `[C*H*W, n]`, each sample's features in PyTorch's flatten order
/// `(c, h, w)`.
public final class Flatten: Stage {
    public let layerName: String
    public let inputShape: Shape

    public init(layerName: String, input: Shape) {
        self.layerName = layerName
        inputShape = input
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let plane = inputShape.planeSize
        for c in 0..<inputShape.channels {
            for b in 0..<n {
                let src = input + (c * n + b) * plane
                let dst = output + c * plane * n + b
                for i in 0..<plane { dst[i * n] = src[i] }
            }
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        let plane = inputShape.planeSize
        for c in 0..<inputShape.channels {
            for b in 0..<n {
                let dst = dx + (c * n + b) * plane
                let src = dy + c * plane * n + b
                for i in 0..<plane { dst[i] = src[i * n] }
            }
        }
    }
}
