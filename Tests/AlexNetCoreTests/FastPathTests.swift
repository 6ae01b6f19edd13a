import AlexNetCore
import Foundation
import XCTest

/// The layers' fast paths against plain formulas computed in Double.
final class FastPathTests: XCTestCase {
    /// The LRN of `[C, count]` in Double, straight from the paper's formula, and its exact gradient.
    struct PlainLRN {
        var channels: Int, groups: Int, size: Int
        var alpha: Double, beta: Double, k: Double

        func window(_ c: Int) -> ClosedRange<Int> {
            let perGroup = channels / groups, first = c / perGroup * perGroup
            return max(first, c - size / 2)...min(first + perGroup - 1, c + size / 2)
        }

        func scale(_ a: [Float], _ c: Int, _ p: Int, count: Int) -> Double {
            k + alpha * window(c).reduce(0) { $0 + Double(a[$1 * count + p]) * Double(a[$1 * count + p]) }
        }

        func forward(_ a: [Float], count: Int) -> [Double] {
            (0..<channels * count).map { i in Double(a[i]) * pow(scale(a, i / count, i % count, count: count), -beta) }
        }

        /// dx_j = dy_j s_j^-beta - 2 alpha beta a_j sum_{i : j in window(i)} dy_i a_i s_i^(-beta-1).
        func backward(_ a: [Float], _ dy: [Float], count: Int) -> [Double] {
            (0..<channels * count).map { j in
                let (c, p) = (j / count, j % count)
                let spread = window(c).reduce(0.0) { total, i in
                    total + Double(dy[i * count + p]) * Double(a[i * count + p]) * pow(scale(a, i, p, count: count), -beta - 1)
                }
                return Double(dy[j]) * pow(scale(a, c, p, count: count), -beta) - 2 * alpha * beta * Double(a[j]) * spread
            }
        }
    }

    /// Largest absolute error over the largest absolute exact value.
    func normwiseError(_ got: [Float], _ exact: [Double]) -> Double {
        let error = zip(got, exact).map { abs(Double($0) - $1) }.max()!
        return error / exact.map(abs).max()!
    }

    func testLRNMatchesThePlainFormulaInDouble() {
        // 2 tiles of positions and a ragged tail (the vector loop's scalar remainder), windows
        // clipped at group edges; beta 0.75 takes the square-root path, 0.6 the pow path.
        let n = 3
        for (channels, groups, alpha, beta) in [(10, 2, 0.5, 0.75), (10, 1, 1e-4, 0.75), (6, 2, 0.5, 0.6)] as [(Int, Int, Float, Float)] {
            let shape = Shape(channels: channels, height: 83, width: 83), count = n * shape.planeSize
            let lrn = LocalResponseNorm(layerName: "lrn", shape: shape, size: 5, alpha: alpha, beta: beta, k: 2, groups: groups, maxBatch: n)
            let plain = PlainLRN(channels: channels, groups: groups, size: 5, alpha: Double(alpha), beta: Double(beta), k: 2)
            let a = randomValues(channels * count, seed: 21), dy = randomValues(channels * count, seed: 22)
            let x = Buffer(a), y = Buffer(count: a.count), g = Buffer(dy), dx = Buffer(count: a.count)
            lrn.forward(input: x.pointer, output: y.pointer, batch: n, context: StepContext(training: true, step: 0, seed: 0))
            lrn.backward(input: x.pointer, output: y.pointer, outputGradient: g.pointer, inputGradient: dx.pointer, batch: n)
            let exact = plain.forward(a, count: count)
            let relative = zip(y.array, exact).map { abs(Double($0) - $1) / max(abs($1), 1e-30) }.max()!
            let gradient = normwiseError(dx.array, plain.backward(a, dy, count: count))
            print("LRN C=\(channels) groups=\(groups) alpha=\(alpha) beta=\(beta): forward relative error \(relative), input gradient normwise \(gradient)")
            XCTAssertLessThan(relative, 1e-6, "forward, element by element")
            XCTAssertLessThan(gradient, 1e-6, "input gradient, normwise")
        }
    }
}

/// A strided, padded, grouped convolution by its definition in Double: output and weight gradient.
struct StridedDirectConvolution {
    var input: Shape, outputs: Int, kernel: Int, stride: Int, padding: Int, groups: Int, batch: Int
    var output: Shape {
        Shape(channels: outputs, height: convolutionOutputSize(input: input.height, kernel: kernel, stride: stride, padding: padding),
              width: convolutionOutputSize(input: input.width, kernel: kernel, stride: stride, padding: padding))
    }

    /// `y = w * x + b` and `dW = dy (x) x`.
    func compute(x: [Float], w: [Float], b: [Float], dy: [Float]) -> (y: [Double], dw: [Double]) {
        let (cg, og, k, out) = (input.channels / groups, outputs / groups, kernel, output)
        let plane = batch * out.planeSize
        var y = (0..<outputs * plane).map { Double(b[$0 / plane]) }, dw = [Double](repeating: 0, count: w.count)
        for o in 0..<outputs { for ci in 0..<cg { for n in 0..<batch { for oh in 0..<out.height { for ow in 0..<out.width {
            let channel = o / og * cg + ci, yi = ((o * batch + n) * out.height + oh) * out.width + ow
            for ki in 0..<k { for kj in 0..<k {
                let ih = oh * stride - padding + ki, iw = ow * stride - padding + kj
                guard ih >= 0, ih < input.height, iw >= 0, iw < input.width else { continue }
                let xi = ((channel * batch + n) * input.height + ih) * input.width + iw, wi = ((o * cg + ci) * k + ki) * k + kj
                y[yi] += Double(w[wi]) * Double(x[xi])
                dw[wi] += Double(dy[yi]) * Double(x[xi])
            } }
        } } } } }
        return (y, dw)
    }
}

extension FastPathTests {
    /// The GEMM forward pass unfolds and multiplies a chunk of images at a time into the whole
    /// batch's column matrix; the weight gradient then reads that matrix. Chunks of 1, 2 and all
    /// 3 images, strides 4 (conv1's; the unfolding gathers four columns at a time) and 3, with
    /// padding and groups, against the definition in Double, normwise within 1e-5.
    func testChunkedGEMMForwardMatchesTheDefinition() {
        for (stride, padding, groups) in [(4, 0, 1), (4, 2, 2), (3, 1, 1)] {
            let reference = StridedDirectConvolution(input: Shape(channels: 4, height: 37, width: 41), outputs: 6, kernel: 7,
                                                     stride: stride, padding: padding, groups: groups, batch: 3)
            let x = randomValues(reference.input.size * 3, seed: 31), dy = randomValues(reference.output.size * 3, seed: 32)
            let w = randomValues(6 * 4 / groups * 49, seed: 33).map { $0 * 0.2 }, b = randomValues(6, seed: 34)
            let exact = reference.compute(x: x, w: w, b: b, dy: dy)
            for chunk in [1, 2, 3] {
                let conv = Convolution(layerName: "conv", input: reference.input, outputs: 6, kernel: 7, stride: stride, padding: padding,
                                       groups: groups, maxBatch: 3, scratch: Scratch(), forwardChunkImages: chunk)
                conv.weight.value.pointer.update(from: w, count: w.count)
                conv.bias.value.pointer.update(from: b, count: b.count)
                let xb = Buffer(x), yb = Buffer(count: exact.y.count), dyb = Buffer(dy)
                conv.forward(input: xb.pointer, output: yb.pointer, batch: 3, context: StepContext(training: true, step: 0, seed: 0))
                conv.backward(input: xb.pointer, output: yb.pointer, outputGradient: dyb.pointer, inputGradient: nil, batch: 3)
                let label = "stride \(stride) padding \(padding) groups \(groups), chunks of \(chunk)"
                XCTAssertLessThan(normwiseError(yb.array, exact.y), 1e-5, "forward, \(label)")
                XCTAssertLessThan(normwiseError(conv.weight.gradient.array, exact.dw), 1e-5, "weight gradient, \(label)")
            }
        }
    }
}

extension FastPathTests {
    /// When the weight gradient does not use GEMM, the GEMM forward pass unfolds each chunk of
    /// images into the shared scratch (in cache) instead of the whole batch's column matrix.
    /// Chunks of 1, 2 and 3 images, padding 0, 1 and 2, groups 1 and 2, against the definition in
    /// Double, normwise within 1e-5 (the forward pass is the same GEMM as with the kept columns).
    func testGEMMForwardThroughTheScratchMatchesTheDefinition() {
        for (padding, groups) in [(0, 1), (1, 2), (2, 1)] {
            let reference = StridedDirectConvolution(input: Shape(channels: 4, height: 9, width: 7), outputs: 6, kernel: 3,
                                                     stride: 1, padding: padding, groups: groups, batch: 3)
            let x = randomValues(reference.input.size * 3, seed: 35), dy = randomValues(reference.output.size * 3, seed: 36)
            let w = randomValues(6 * 4 / groups * 9, seed: 37).map { $0 * 0.2 }, b = randomValues(6, seed: 38)
            let exact = reference.compute(x: x, w: w, b: b, dy: dy)
            for chunk in [1, 2, 3] {
                let conv = Convolution(layerName: "conv", input: reference.input, outputs: 6, kernel: 3, stride: 1, padding: padding,
                                       groups: groups, maxBatch: 3, scratch: Scratch(), forwardChunkImages: chunk)
                conv.use(ConvolutionAlgorithms(forward: .gemm, inputGradient: .winograd2x2, weightGradient: .winograd2x2))
                conv.weight.value.pointer.update(from: w, count: w.count)
                conv.bias.value.pointer.update(from: b, count: b.count)
                let xb = Buffer(x), yb = Buffer(count: exact.y.count)
                conv.forward(input: xb.pointer, output: yb.pointer, batch: 3, context: StepContext(training: true, step: 0, seed: 0))
                XCTAssertLessThan(normwiseError(yb.array, exact.y), 1e-5, "forward, padding \(padding) groups \(groups), chunks of \(chunk)")
            }
        }
    }
}

extension FastPathTests {
    /// The bias gradient sums each output channel's gradient in eight Double lanes; against one
    /// Double sum, for rows of 8k+3 positions (the lanes and the remainder), within 1e-6 relative.
    func testBiasGradientIsTheSumOfTheOutputGradient() {
        let input = Shape(channels: 2, height: 9, width: 9), n = 3
        let conv = Convolution(layerName: "conv", input: input, outputs: 4, kernel: 3, stride: 2, padding: 1, groups: 2,
                               maxBatch: n, scratch: Scratch())
        let length = n * conv.outputShape.planeSize
        XCTAssertEqual(length % 8, 3)
        let x = Buffer(randomValues(input.size * n, seed: 41)), y = Buffer(count: 4 * length)
        let dy = randomValues(4 * length, seed: 42).map { $0 + 100 }, dyBuffer = Buffer(dy)
        conv.forward(input: x.pointer, output: y.pointer, batch: n, context: StepContext(training: true, step: 0, seed: 0))
        conv.backward(input: x.pointer, output: y.pointer, outputGradient: dyBuffer.pointer, inputGradient: nil, batch: n)
        for o in 0..<4 {
            let exact = dy[o * length..<(o + 1) * length].reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(Double(conv.bias.gradient.array[o]), exact, accuracy: 1e-6 * abs(exact), "channel \(o)")
        }
    }
}

extension FastPathTests {
    /// Max pooling takes four stride-2 windows at once where their loads stay inside the row.
    /// Against the definition (the first maximum in row order), exactly: the outputs, and the
    /// backward pass, which routes each gradient to the chosen pixel. Widths that leave no
    /// block, one block and a remainder, and several blocks; strides 2 and 3; sizes 2 and 3;
    /// whole numbers from a small range, so that windows often tie (as ReLU's zeros do).
    func testMaxPoolMatchesTheDefinitionExactly() {
        let n = 2
        for (height, width, size, stride) in [(32, 32, 3, 2), (15, 15, 3, 2), (7, 7, 3, 2), (9, 27, 2, 2), (11, 13, 3, 3), (5, 21, 3, 2)] {
            let shape = Shape(channels: 3, height: height, width: width)
            let pool = MaxPool(layerName: "pool", input: shape, size: size, stride: stride, maxBatch: n)
            let out = pool.outputShape
            let x = randomValues(shape.size * n, seed: 61).map { ($0 * 2).rounded() + 0 }
            let dy = randomValues(out.size * n, seed: 62)
            var expected = [Float](repeating: 0, count: out.size * n), dxExpected = [Float](repeating: 0, count: x.count)
            for plane in 0..<3 * n { for i in 0..<out.height { for j in 0..<out.width {
                var best = plane * shape.planeSize + i * stride * width + j * stride
                for di in 0..<size { for dj in 0..<size {
                    let at = plane * shape.planeSize + (i * stride + di) * width + j * stride + dj
                    if x[at] > x[best] { best = at }
                } }
                let o = plane * out.planeSize + i * out.width + j
                expected[o] = x[best]
                dxExpected[best] += dy[o]
            } } }
            let xb = Buffer(x), y = Buffer(count: expected.count), g = Buffer(dy), dx = Buffer(count: x.count)
            pool.forward(input: xb.pointer, output: y.pointer, batch: n, context: StepContext(training: true, step: 0, seed: 0))
            pool.backward(input: xb.pointer, output: y.pointer, outputGradient: g.pointer, inputGradient: dx.pointer, batch: n)
            let label = "\(height)x\(width) size \(size) stride \(stride)"
            XCTAssertEqual(y.array, expected, "forward, \(label)")
            XCTAssertEqual(dx.array.map(\.bitPattern), dxExpected.map(\.bitPattern), "backward, \(label)")
        }
    }
}
