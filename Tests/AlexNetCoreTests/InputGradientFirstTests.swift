import AlexNetComm
import AlexNetCore
import AlexNetSplit
import XCTest

/// A cross-connected layer's backward pass in Megatron-LM's order (input gradient, then the
/// reduce-scatter started, then the weight gradient): the same bits as the one-call order, but
/// for a GEMM weight gradient cut into row blocks. OpenBLAS may round a block of rows
/// differently from the whole product: its SkylakeX kernels give the same bits, its Haswell and
/// Zen kernels (what machines without AVX-512 get) do not. Those are held to rounding.
final class InputGradientFirstTests: XCTestCase {
    /// `actual` within rounding of `expected`: normwise (largest difference over largest value)
    /// at most 1e-6, about ten times float32's unit roundoff.
    static func assertWithinRounding(_ actual: [Float], _ expected: [Float], _ message: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        let scale = expected.map { abs($0) }.max() ?? 0
        let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(error, 1e-6 * scale, message, file: file, line: line)
        XCTAssertTrue(actual.allSatisfy(\.isFinite), message, file: file, line: line)
    }

    /// Random values from a keyed generator.
    static func values(_ count: Int, key: UInt64) -> [Float] {
        var random = KeyedRandom(21, key)
        return (0..<count).map { _ in Float(random.normal()) }
    }

    /// Every mix of algorithms of a 3x3 convolution (the forward pass's too, since Winograd's
    /// backward may reuse what its forward pass left), one and two groups, 96 outputs per group
    /// (six and three row blocks of the GEMM weight gradient): the two halves give `backward`'s
    /// input and bias gradients bit for bit, and its weight gradient bit for bit under Winograd
    /// (whose products are the same calls either way) and within rounding under GEMM (row
    /// blocks); and they call `progress` between pieces.
    func testConvolutionHalvesEqualTheOneCallBackward() {
        let all: [ConvolutionAlgorithm] = [.gemm, .winograd2x2, .winograd4x4]
        let n = 8, input = Shape(channels: 32, height: 13, width: 13)
        for groups in [1, 2] {
            for forward in all {
                for inputGradient in all {
                    for weightGradient in all {
                        let choice = ConvolutionAlgorithms(forward: forward, inputGradient: inputGradient, weightGradient: weightGradient)
                        assertHalvesEqualOneCall(groups: groups, choice: choice, input: input, batch: n)
                    }
                }
            }
        }
    }

    func assertHalvesEqualOneCall(groups: Int, choice: ConvolutionAlgorithms, input: Shape, batch n: Int) {
        let conv = Convolution(layerName: "c", input: input, outputs: 96 * groups, kernel: 3, stride: 1, padding: 1,
                               groups: groups, maxBatch: n, scratch: Scratch())
        conv.use(choice)
        conv.weight.value.pointer.update(from: Self.values(conv.weight.count, key: 1), count: conv.weight.count)
        conv.bias.value.pointer.update(from: Self.values(conv.bias.count, key: 2), count: conv.bias.count)
        let x = Self.values(input.size * n, key: 3), dy = Self.values(conv.outputShape.size * n, key: 4)
        var y = [Float](repeating: 0, count: conv.outputShape.size * n)
        let context = StepContext(training: true, step: 0, seed: 1)
        var oneCall = [Float](repeating: 0, count: input.size * n), halves = oneCall
        conv.forward(input: x, output: &y, batch: n, context: context)
        conv.backward(input: x, output: y, outputGradient: dy, inputGradient: &oneCall, batch: n)
        let (weightGradient, biasGradient) = (conv.weight.gradient.array, conv.bias.gradient.array)
        conv.weight.gradient.pointer.update(repeating: .nan, count: conv.weight.count)
        conv.bias.gradient.pointer.update(repeating: .nan, count: conv.bias.count)

        conv.forward(input: x, output: &y, batch: n, context: context)
        halves = [Float](repeating: .nan, count: halves.count)
        conv.backwardInput(input: x, outputGradient: dy, inputGradient: &halves, batch: n)
        var calls = 0
        conv.backwardParameters(input: x, outputGradient: dy, batch: n) { calls += 1 }
        let label = "groups \(groups), \(choice)"
        XCTAssertEqual(halves.map(\.bitPattern), oneCall.map(\.bitPattern), "input gradient, \(label)")
        if choice.weightGradient == .gemm {
            Self.assertWithinRounding(conv.weight.gradient.array, weightGradient, "weight gradient, \(label)")
        } else {
            XCTAssertEqual(conv.weight.gradient.array.map(\.bitPattern), weightGradient.map(\.bitPattern), "weight gradient, \(label)")
        }
        XCTAssertEqual(conv.bias.gradient.array.map(\.bitPattern), biasGradient.map(\.bitPattern), "bias gradient, \(label)")
        XCTAssertGreaterThanOrEqual(calls, 2, "progress between pieces, \(label)")
        XCTAssertTrue(oneCall.contains { $0 != 0 } && weightGradient.contains { $0 != 0 })
    }

    /// The same for a fully-connected layer, one and two groups, its weight gradient in four
    /// row blocks per group (within rounding); and a layer too small to be worth cutting, in one
    /// (bit for bit).
    func testLinearHalvesEqualTheOneCallBackward() {
        for (groups, inputs, outputs, n, blocks) in [(1, 1024, 256, 64, 4), (2, 1024, 256, 64, 4), (1, 40, 64, 5, 1)] {
            let linear = Linear(layerName: "f", inputs: inputs * groups, outputs: outputs * groups, groups: groups)
            linear.weight.value.pointer.update(from: Self.values(linear.weight.count, key: 5), count: linear.weight.count)
            let x = Self.values(linear.inputs * n, key: 6), dy = Self.values(linear.outputs * n, key: 7)
            let y = [Float](repeating: 0, count: linear.outputs * n)
            var oneCall = [Float](repeating: 0, count: linear.inputs * n), halves = oneCall
            linear.backward(input: x, output: y, outputGradient: dy, inputGradient: &oneCall, batch: n)
            let (weightGradient, biasGradient) = (linear.weight.gradient.array, linear.bias.gradient.array)
            linear.weight.gradient.pointer.update(repeating: .nan, count: linear.weight.count)
            linear.bias.gradient.pointer.update(repeating: .nan, count: linear.bias.count)
            linear.backwardInput(input: x, outputGradient: dy, inputGradient: &halves, batch: n)
            var calls = 0
            linear.backwardParameters(input: x, outputGradient: dy, batch: n) { calls += 1 }
            XCTAssertEqual(halves.map(\.bitPattern), oneCall.map(\.bitPattern), "groups \(groups)")
            if blocks > 1 {
                Self.assertWithinRounding(linear.weight.gradient.array, weightGradient, "groups \(groups)")
            } else {
                XCTAssertEqual(linear.weight.gradient.array.map(\.bitPattern), weightGradient.map(\.bitPattern), "groups \(groups)")
            }
            XCTAssertEqual(linear.bias.gradient.array.map(\.bitPattern), biasGradient.map(\.bitPattern), "groups \(groups)")
            XCTAssertEqual(calls, blocks * groups - 1, "\(blocks) blocks per group, groups \(groups)")
        }
    }

    /// The whole split network on two simulated ranks, under GEMM and Winograd: with the overlap
    /// on, every rank's gradients (and so the losses and the steps after) are those of the
    /// one-call order; the overlap is on by default.
    func testOverlappedBackwardGivesTheOneCallGradients() throws {
        for request in [ConvolutionAlgorithmRequest.gemm, .winograd, .winograd4x4] {
            let spec = Preset.tiny.spec(classes: 5)
            let plan = try NetworkPlan(spec: spec, model: .split)
            let group = InProcessGroup(size: 2)
            let gradients = group.collect { communicator -> [[UInt32]] in
                var result: [[UInt32]] = []
                for overlap in [false, true] {
                    let network = try! Network(plan: plan, communicator: communicator, maxBatch: 4, seed: 9)
                    try! network.use(network.fixedPlan(request))
                    XCTAssertTrue(network.overlapsInputGradients)
                    network.overlapsInputGradients = overlap
                    let batch = Batch(shape: spec.input, capacity: 4)
                    batch.fill(pixels: Self.values(spec.input.size * 4, key: 8), labels: [0, 1, 4, 2])
                    network.run(batch, context: StepContext(training: true, step: 0, seed: 9))
                    result.append(network.parameters.flatMap { $0.gradient.array.map(\.bitPattern) })
                }
                return result
            }
            for (rank, pair) in gradients.enumerated() {
                XCTAssertEqual(pair[0], pair[1], "rank \(rank), \(request)")
                XCTAssertTrue(pair[1].contains { $0 != 0 }, "rank \(rank) has gradients")
            }
        }
    }
}

/// A cross-connected layer's forward pass in two parts around the all-gather: its own channels'
/// part first, read from the rank's own activations, then the others'.
final class GatheredInputFirstTests: XCTestCase {
    /// Under each algorithm, and under the mixed plans `auto` may choose (a GEMM forward pass
    /// with Winograd gradients, whose columns are not kept and go through the scratch, and the
    /// reverse), a convolution of 32 input channels, split at every rank's block of two and of
    /// four ranks: within rounding of the one-pass forward (another order of the channel sums),
    /// and leaving what the backward pass reads (im2col columns, Winograd's transformed input)
    /// exactly as the one pass does, so that the weight gradient has its bits.
    func testConvolutionInPartsMatchesTheOnePass() {
        let n = 4, input = Shape(channels: 32, height: 13, width: 13)
        let plans = [ConvolutionAlgorithm.gemm, .winograd2x2, .winograd4x4].map { ConvolutionAlgorithms($0) } + [
            ConvolutionAlgorithms(forward: .gemm, inputGradient: .winograd4x4, weightGradient: .winograd4x4),
            ConvolutionAlgorithms(forward: .winograd4x4, inputGradient: .gemm, weightGradient: .gemm),
        ]
        for algorithm in plans {
            let conv = Convolution(layerName: "c", input: input, outputs: 24, kernel: 3, stride: 1, padding: 1,
                                   groups: 1, maxBatch: n, scratch: Scratch(), forwardChunkImages: 3)
            conv.use(algorithm)
            conv.weight.value.pointer.update(from: InputGradientFirstTests.values(conv.weight.count, key: 11), count: conv.weight.count)
            conv.bias.value.pointer.update(from: InputGradientFirstTests.values(conv.bias.count, key: 12), count: conv.bias.count)
            let x = InputGradientFirstTests.values(input.size * n, key: 13), dy = InputGradientFirstTests.values(conv.outputShape.size * n, key: 14)
            let context = StepContext(training: true, step: 0, seed: 1)
            var y = [Float](repeating: 0, count: conv.outputShape.size * n)
            conv.forward(input: x, output: &y, batch: n, context: context)
            conv.backward(input: x, output: y, outputGradient: dy, inputGradient: nil, batch: n)
            let weightGradient = conv.weight.gradient.array
            for own in [0..<16, 16..<32, 8..<16, 24..<32] {
                var parts = [Float](repeating: .nan, count: y.count), calls = 0
                let local = Array(x[(own.lowerBound * n * input.planeSize)..<(own.upperBound * n * input.planeSize)])
                conv.forwardOwnChannels(localInput: local, channels: own, output: &parts, batch: n) { calls += 1 }
                conv.forwardOtherChannels(input: x, channels: own, output: &parts, batch: n)
                let label = "\(algorithm.text), own channels \(own)"
                XCTAssertGreaterThan(calls, 0, label)
                let scale = y.map { abs($0) }.max()!
                XCTAssertLessThanOrEqual(zip(y, parts).map { abs($0 - $1) }.max()!, 1e-5 * scale, label)
                conv.weight.gradient.pointer.update(repeating: .nan, count: conv.weight.count)
                conv.backward(input: x, output: parts, outputGradient: dy, inputGradient: nil, batch: n)
                XCTAssertEqual(conv.weight.gradient.array.map(\.bitPattern), weightGradient.map(\.bitPattern), label)
            }
        }
    }

    /// The same for a fully-connected layer.
    func testLinearInPartsMatchesTheOnePass() {
        let n = 6, linear = Linear(layerName: "f", inputs: 64, outputs: 10, groups: 1)
        linear.weight.value.pointer.update(from: InputGradientFirstTests.values(linear.weight.count, key: 15), count: linear.weight.count)
        linear.bias.value.pointer.update(from: InputGradientFirstTests.values(linear.bias.count, key: 16), count: linear.bias.count)
        let x = InputGradientFirstTests.values(64 * n, key: 17)
        var y = [Float](repeating: 0, count: 10 * n)
        linear.forward(input: x, output: &y, batch: n, context: StepContext(training: true, step: 0, seed: 1))
        for own in [0..<32, 32..<64, 16..<32] {
            var parts = [Float](repeating: .nan, count: y.count)
            linear.forwardOwnChannels(localInput: Array(x[(own.lowerBound * n)..<(own.upperBound * n)]), channels: own, output: &parts, batch: n) {}
            linear.forwardOtherChannels(input: x, channels: own, output: &parts, batch: n)
            let scale = y.map { abs($0) }.max()!
            XCTAssertLessThanOrEqual(zip(y, parts).map { abs($0 - $1) }.max()!, 1e-5 * scale, "own features \(own)")
        }
    }

    /// The split network on two simulated ranks: with the forward overlap on (the default), both
    /// ranks get the same loss, within rounding of the one-pass forward's.
    func testOverlappedForwardMatchesTheOnePass() throws {
        for request in [ConvolutionAlgorithmRequest.gemm, .winograd] {
            let spec = Preset.tiny.spec(classes: 5)
            let plan = try NetworkPlan(spec: spec, model: .split)
            let losses = InProcessGroup(size: 2).collect { communicator -> [Double] in
                [false, true].map { overlap in
                    let network = try! Network(plan: plan, communicator: communicator, maxBatch: 4, seed: 9)
                    try! network.use(network.fixedPlan(request))
                    XCTAssertTrue(network.overlapsGathers)
                    network.overlapsGathers = overlap
                    let batch = Batch(shape: spec.input, capacity: 4)
                    batch.fill(pixels: InputGradientFirstTests.values(spec.input.size * 4, key: 18), labels: [0, 1, 4, 2])
                    return network.run(batch, context: StepContext(training: true, step: 0, seed: 9)).loss
                }
            }
            XCTAssertEqual(losses[0], losses[1], "\(request)")
            XCTAssertEqual(losses[0][1], losses[0][0], accuracy: 1e-5 * abs(losses[0][0]), "\(request)")
        }
    }
}
