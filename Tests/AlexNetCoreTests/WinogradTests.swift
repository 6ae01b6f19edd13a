import AlexNetComm
import AlexNetCore
import AlexNetSplit
import XCTest

/// Winograd minimal filtering against a direct convolution computed in Double: forward, input
/// gradient and weight gradient, on odd sizes (ragged last tiles), with and without padding,
/// with groups and several batch sizes.
///
/// Error is measured normwise: the largest absolute error over the tensor divided by the
/// tensor's largest absolute value. Stated bounds (measured worst in brackets, as printed):
/// - GEMM (im2col): 1e-5 (4e-7);
/// - F(2x2, 3x3): 1e-4, the bound (3e-7); F(2x2, 5x5): 1e-4 (4e-6);
/// - F(4x4, 3x3) and F(4x4, 5x5): 5e-5 (4e-6): with the points 0, ±1, ±2 (and ±1/2 for 5x5)
///   the larger tiles round about ten times more than F(2x2, 3x3), still far below the bound.
final class WinogradTests: XCTestCase {
    struct Case {
        var channels: Int, outputs: Int, height: Int, width: Int, kernel: Int, padding: Int, groups: Int, batch: Int
    }

    let cases = [
        Case(channels: 4, outputs: 6, height: 13, width: 13, kernel: 3, padding: 1, groups: 1, batch: 3),
        Case(channels: 6, outputs: 4, height: 7, width: 9, kernel: 3, padding: 1, groups: 2, batch: 2),
        Case(channels: 3, outputs: 5, height: 8, width: 11, kernel: 3, padding: 0, groups: 1, batch: 1),
        Case(channels: 96, outputs: 32, height: 13, width: 13, kernel: 3, padding: 1, groups: 2, batch: 2),
        Case(channels: 4, outputs: 6, height: 13, width: 10, kernel: 5, padding: 2, groups: 2, batch: 2),
        Case(channels: 48, outputs: 16, height: 9, width: 9, kernel: 5, padding: 2, groups: 1, batch: 1),
    ]

    static func bound(_ algorithm: ConvolutionAlgorithm, kernel: Int) -> Double {
        switch algorithm {
        case .gemm: 1e-5
        case .winograd2x2: 1e-4
        case .winograd4x4: 5e-5
        }
    }

    func testEveryPassAgainstDirectConvolution() {
        var worst: [String: Double] = [:]
        for (i, c) in cases.enumerated() {
            let reference = DirectConvolution(c, seed: UInt64(i))
            for algorithm in ConvolutionAlgorithm.allCases {
                let errors = reference.errors(of: ConvolutionAlgorithms(algorithm))
                let bound = Self.bound(algorithm, kernel: c.kernel)
                worst["\(algorithm.rawValue) k\(c.kernel)", default: 0] = max(worst["\(algorithm.rawValue) k\(c.kernel)", default: 0], errors.max()!)
                for (pass, error) in zip(["forward", "input gradient", "weight gradient"], errors) {
                    XCTAssertLessThan(error, bound, "\(algorithm.rawValue) \(pass) on \(c)")
                }
            }
        }
        print("largest normwise error over the cases: " + worst.sorted { $0.key < $1.key }.map { String(format: "%@ %.1e", $0.key, $0.value) }.joined(separator: ", "))
    }

    /// Passes on different algorithms: the weight gradient must transform the input itself when
    /// the forward pass did not, and GEMM must unfold it when forward ran Winograd.
    func testMixedAlgorithmsPerPass() {
        let c = cases[1], reference = DirectConvolution(c, seed: 7)
        let mixes = [ConvolutionAlgorithms(forward: .winograd2x2, inputGradient: .gemm, weightGradient: .gemm),
                     ConvolutionAlgorithms(forward: .gemm, inputGradient: .winograd4x4, weightGradient: .winograd2x2),
                     ConvolutionAlgorithms(forward: .winograd4x4, inputGradient: .winograd2x2, weightGradient: .winograd4x4)]
        for mix in mixes {
            let errors = reference.errors(of: mix)
            for (error, algorithm) in zip(errors, mix.all) {
                XCTAssertLessThan(error, Self.bound(algorithm, kernel: c.kernel), "\(mix.text)")
            }
        }
    }

    func testFiniteDifferencesUnderEveryAlgorithm() {
        // A convolution is linear in its input and in its weights, so a large nudge has no
        // truncation error and lifts the difference above the forward pass's rounding, which
        // Winograd makes larger (with 1e-2, F(4x4, 5x5)'s rounding alone is a 9% "error").
        var checker = GradientChecker()
        checker.epsilon = 0.25
        for algorithm in ConvolutionAlgorithm.allCases {
            for (kernel, padding, groups) in [(3, 1, 1), (3, 0, 2), (5, 2, 2)] {
                let input = Shape(channels: 4, height: 9, width: 7), n = 2
                let conv = Convolution(layerName: "conv \(algorithm.rawValue) k\(kernel) p\(padding) g\(groups)", input: input,
                                       outputs: 6, kernel: kernel, stride: 1, padding: padding, groups: groups, maxBatch: n, scratch: Scratch())
                conv.use(ConvolutionAlgorithms(algorithm))
                randomize(conv, seed: 5)
                checker.check(conv, input: randomValues(input.size * n, seed: 1), outputCount: conv.outputShape.size * n, batch: n)
            }
        }
    }

    func testAutoChoosesAmongWhatEachLayerSupports() throws {
        let plan = try NetworkPlan(spec: Preset.tiny.spec(classes: 4), model: .split)
        let network = try Network(plan: plan, communicator: SingleProcessCommunicator(), maxBatch: 4, seed: 1)
        let before = network.convolutionPlan, weights = network.parameters.map(\.value.array)
        let training = network.tuneConvolutions(batch: 4)
        XCTAssertEqual(network.convolutionPlan, before, "timing leaves the network on its plan")
        XCTAssertEqual(network.parameters.map(\.value.array), weights, "timing leaves the weights alone")
        XCTAssertEqual(training.layers.map(\.layer), ["conv1", "conv2", "conv3", "conv4", "conv5"])
        XCTAssertEqual(training.layers[0].algorithms, .gemm, "conv1 has stride 2: GEMM is all it supports")
        for (entry, conv) in zip(training.layers, network.convolutions) {
            for algorithm in entry.algorithms.all { XCTAssertTrue(conv.supports(algorithm), "\(entry.layer) \(algorithm)") }
        }
        for entry in network.tuneConvolutions(batch: 4, training: false).layers {
            XCTAssertEqual(entry.algorithms, ConvolutionAlgorithms(entry.algorithms.forward), "inference times the forward pass only")
        }
        XCTAssertEqual(before.replacing(codes: training.codes), training, "the broadcast codes carry the plan")
        XCTAssertNil(before.replacing(codes: [0, 1]), "codes for another model are refused")
        XCTAssertThrowsError(try network.use(ConvolutionPlan(layers: [.init(layer: "conv1", algorithms: ConvolutionAlgorithms(.winograd2x2))])))
        var stride2 = training
        stride2.layers[0].algorithms = ConvolutionAlgorithms(.winograd2x2)
        XCTAssertThrowsError(try network.use(stride2)) { XCTAssertTrue("\($0)".contains("conv1 cannot run winograd-2x2"), "\($0)") }
    }

    func testWinogradNeedsStrideOne() {
        let conv = Convolution(layerName: "s2", input: Shape(channels: 2, height: 9, width: 9), outputs: 2, kernel: 3, stride: 2,
                               padding: 1, groups: 1, maxBatch: 1, scratch: Scratch())
        XCTAssertTrue(conv.supports(.gemm))
        XCTAssertFalse(conv.supports(.winograd2x2))
        let wide = Convolution(layerName: "k7", input: Shape(channels: 2, height: 9, width: 9), outputs: 2, kernel: 7, stride: 1,
                               padding: 3, groups: 1, maxBatch: 1, scratch: Scratch())
        XCTAssertTrue(wide.supports(.winograd2x2))
        XCTAssertFalse(wide.supports(.winograd4x4), "F(4x4, 7x7) needs a 10x10 tile, beyond the listed points")
    }
}

/// A convolution and its two gradients computed by the definition, in Double.
struct DirectConvolution {
    let c: WinogradTests.Case
    let x: [Float], w: [Float], b: [Float], dy: [Float]
    let outHeight: Int, outWidth: Int
    var y: [Double] = [], dx: [Double] = [], dw: [Double] = []

    init(_ c: WinogradTests.Case, seed: UInt64) {
        self.c = c
        outHeight = c.height + 2 * c.padding - c.kernel + 1
        outWidth = c.width + 2 * c.padding - c.kernel + 1
        x = randomValues(c.channels * c.batch * c.height * c.width, seed: seed &+ 100)
        w = randomValues(c.outputs * c.channels / c.groups * c.kernel * c.kernel, seed: seed &+ 200).map { $0 * 0.2 }
        b = randomValues(c.outputs, seed: seed &+ 300)
        dy = randomValues(c.outputs * c.batch * outHeight * outWidth, seed: seed &+ 400)
        compute()
    }

    /// Visits every (output, input, filter tap) triple: `body(outputIndex, inputIndex, weightIndex)`.
    private func forEachTap(_ body: (Int, Int, Int) -> Void) {
        let cg = c.channels / c.groups, og = c.outputs / c.groups, k = c.kernel
        for o in 0..<c.outputs { for ci in 0..<cg { for n in 0..<c.batch { for oh in 0..<outHeight { for ow in 0..<outWidth {
            let channel = o / og * cg + ci
            for ki in 0..<k { for kj in 0..<k {
                let ih = oh - c.padding + ki, iw = ow - c.padding + kj
                guard ih >= 0, ih < c.height, iw >= 0, iw < c.width else { continue }
                body(((o * c.batch + n) * outHeight + oh) * outWidth + ow, ((channel * c.batch + n) * c.height + ih) * c.width + iw,
                     ((o * cg + ci) * k + ki) * k + kj)
            } }
        } } } } }
    }

    private mutating func compute() {
        let plane = c.batch * outHeight * outWidth
        var y = (0..<c.outputs * plane).map { Double(b[$0 / plane]) }
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        let (x, w, dy) = (x, w, dy)
        forEachTap { out, input, tap in
            y[out] += Double(w[tap]) * Double(x[input])
            dx[input] += Double(w[tap]) * Double(dy[out])
            dw[tap] += Double(dy[out]) * Double(x[input])
        }
        (self.y, self.dx, self.dw) = (y, dx, dw)
    }

    /// Normwise errors of the forward output, input gradient and weight gradient under `algorithms`.
    func errors(of algorithms: ConvolutionAlgorithms) -> [Double] {
        let conv = Convolution(layerName: "conv", input: Shape(channels: c.channels, height: c.height, width: c.width), outputs: c.outputs,
                               kernel: c.kernel, stride: 1, padding: c.padding, groups: c.groups, maxBatch: c.batch, scratch: Scratch())
        conv.use(algorithms)
        conv.weight.value.pointer.update(from: w, count: w.count)
        conv.bias.value.pointer.update(from: b, count: b.count)
        let xb = Buffer(x), yb = Buffer(count: y.count), dyb = Buffer(dy), dxb = Buffer(count: x.count)
        conv.forward(input: xb.pointer, output: yb.pointer, batch: c.batch, context: StepContext(training: true, step: 0, seed: 1))
        conv.backward(input: xb.pointer, output: yb.pointer, outputGradient: dyb.pointer, inputGradient: dxb.pointer, batch: c.batch)
        return [normwise(yb.array, y), normwise(dxb.array, dx), normwise(conv.weight.gradient.array, dw)]
    }

    private func normwise(_ got: [Float], _ want: [Double]) -> Double {
        let scale = want.map(abs).max() ?? 1
        return zip(got, want).map { abs(Double($0) - $1) }.max()! / max(scale, 1e-30)
    }
}
