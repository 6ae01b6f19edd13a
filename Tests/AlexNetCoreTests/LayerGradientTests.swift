import AlexNetCore
import XCTest

/// A finite-difference gradient check of every layer kind.
final class LayerGradientTests: XCTestCase {
    let checker = GradientChecker()

    func testConvolutionWithStridePaddingAndGroups() {
        for (groups, stride, padding, kernel) in [(1, 1, 1, 3), (2, 2, 2, 5), (2, 1, 0, 3), (1, 3, 1, 4)] {
            let input = Shape(channels: 4, height: 9, width: 8), n = 2
            let conv = Convolution(layerName: "conv g\(groups) s\(stride) p\(padding)", input: input, outputs: 6, kernel: kernel,
                                   stride: stride, padding: padding, groups: groups, maxBatch: n, scratch: Scratch())
            randomize(conv, seed: 5)
            checker.check(conv, input: randomValues(input.size * n, seed: 1), outputCount: conv.outputShape.size * n, batch: n)
        }
    }

    func testConvolutionInputGradientInChunksOfImages() {
        // The input gradient is folded back a few images at a time; chunks of 1 and 2 of 3 images.
        for chunk in [1, 2] {
            let input = Shape(channels: 4, height: 7, width: 7), n = 3
            let conv = Convolution(layerName: "conv chunk \(chunk)", input: input, outputs: 4, kernel: 3, stride: 2, padding: 1,
                                   groups: 2, maxBatch: n, scratch: Scratch(), chunkImages: chunk)
            randomize(conv, seed: 6)
            checker.check(conv, input: randomValues(input.size * n, seed: 2), outputCount: conv.outputShape.size * n, batch: n)
        }
    }

    func testConvolutionOutputSizeMatchesThePaper() {
        XCTAssertEqual(convolutionOutputSize(input: 227, kernel: 11, stride: 4, padding: 0), 55)
        XCTAssertEqual(convolutionOutputSize(input: 55, kernel: 3, stride: 2, padding: 0), 27)
        XCTAssertEqual(convolutionOutputSize(input: 27, kernel: 3, stride: 2, padding: 0), 13)
        XCTAssertEqual(convolutionOutputSize(input: 13, kernel: 3, stride: 2, padding: 0), 6)
    }

    func testLinearPlainAndGrouped() {
        for groups in [1, 2] {
            let n = 3
            let linear = Linear(layerName: "fc g\(groups)", inputs: 8, outputs: 6, groups: groups)
            randomize(linear, seed: 7)
            checker.check(linear, input: randomValues(8 * n, seed: 2), outputCount: 6 * n, batch: n)
        }
    }

    func testReLU() {
        let shape = Shape(channels: 3, height: 4, width: 4), n = 2
        checker.check(ReLU(layerName: "relu", shape: shape), input: randomValues(shape.size * n, seed: 3, floor: 0.05),
                      outputCount: shape.size * n, batch: n)
    }

    func testLRNAtTowerEdges() {
        // 6 channels in 2 groups of 3, window 5: every window is clipped by a group edge.
        // alpha is large so that the normalising term matters to the gradient.
        let shape = Shape(channels: 6, height: 3, width: 3), n = 2
        for (alpha, groups) in [(Float(0.5), 2), (Float(0.5), 1), (Float(1e-4), 2)] {
            let lrn = LocalResponseNorm(layerName: "lrn a\(alpha) g\(groups)", shape: shape, size: 5, alpha: alpha, beta: 0.75,
                                        k: 2, groups: groups, maxBatch: n)
            checker.check(lrn, input: randomValues(shape.size * n, seed: 4), outputCount: shape.size * n, batch: n)
        }
    }

    func testLRNWindowStaysInsideItsGroup() {
        // Channel 2 of group 0 must not see channel 3 (group 1): changing channel 3 leaves it alone.
        let shape = Shape(channels: 6), n = 1
        let lrn = LocalResponseNorm(layerName: "lrn", shape: shape, size: 5, alpha: 1, beta: 0.75, k: 2, groups: 2, maxBatch: n)
        let context = StepContext(training: false, step: 0, seed: 0)
        let a = Buffer([1, 1, 1, 1, 1, 1]), b = Buffer([1, 1, 1, 9, 1, 1])
        let ya = Buffer(count: 6), yb = Buffer(count: 6)
        lrn.forward(input: a.pointer, output: ya.pointer, batch: n, context: context)
        lrn.forward(input: b.pointer, output: yb.pointer, batch: n, context: context)
        XCTAssertEqual(ya.array[0..<3], yb.array[0..<3])
        XCTAssertNotEqual(ya.array[4], yb.array[4])
        // b_0 = 1 / (2 + 1 * (1 + 1 + 1))^0.75: window {0, 1, 2}, clipped at the group's start.
        XCTAssertEqual(ya.array[0], 1 / powf(5, 0.75), accuracy: 1e-6)
    }

    func testOverlappingMaxPool() {
        let shape = Shape(channels: 2, height: 7, width: 7), n = 2
        // Distinct values 0.1 apart, shuffled: no ties, and a 0.01 nudge never changes a window's winner.
        var random = KeyedRandom(8)
        let input = random.permutation(shape.size * n).map { Float($0) * 0.1 }
        let pool = MaxPool(layerName: "pool", input: shape, maxBatch: n)
        XCTAssertEqual(pool.outputShape, Shape(channels: 2, height: 3, width: 3))
        checker.check(pool, input: input, outputCount: pool.outputShape.size * n, batch: n)
    }

    func testDropoutKeepsItsMaskWithinAStepAndScales() {
        let n = 4
        let dropout = Dropout(layerName: "drop", layerIndex: 5, features: 10, rate: 0.5, groups: 2, firstTower: 0, maxBatch: n)
        checker.check(dropout, input: randomValues(10 * n, seed: 9), outputCount: 10 * n, batch: n)
        let ones = Buffer([Float](repeating: 1, count: 1000)), out = Buffer(count: 1000)
        let big = Dropout(layerName: "drop", layerIndex: 5, features: 250, rate: 0.5, groups: 1, firstTower: 0, maxBatch: 4)
        big.forward(input: ones.pointer, output: out.pointer, batch: 4, context: StepContext(training: true, step: 1, seed: 2))
        XCTAssertTrue(out.array.allSatisfy { $0 == 0 || $0 == 2 })
        let kept = out.array.filter { $0 == 2 }.count
        XCTAssertTrue((400...600).contains(kept), "kept \(kept) of 1000 at rate 0.5")
        big.forward(input: ones.pointer, output: out.pointer, batch: 4, context: StepContext(training: false, step: 1, seed: 2))
        XCTAssertEqual(out.array, ones.array)
    }

    func testFlatten() {
        let shape = Shape(channels: 3, height: 2, width: 2), n = 2
        let flatten = Flatten(layerName: "flat", input: shape)
        checker.check(flatten, input: randomValues(shape.size * n, seed: 10), outputCount: shape.size * n, batch: n)
        // Sample 1's features are (c, h, w) in PyTorch's order.
        let x = Buffer((0..<24).map(Float.init)), y = Buffer(count: 24)
        flatten.forward(input: x.pointer, output: y.pointer, batch: n, context: checker.context)
        let sample1 = (0..<12).map { y.array[$0 * n + 1] }
        XCTAssertEqual(sample1, [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23])
    }

    func testSoftmaxCrossEntropy() {
        let classes = 5, n = 3
        var logits = randomValues(classes * n, seed: 12)
        let labels: [Int32] = [0, 4, 2]
        let gradient = Buffer(count: classes * n)
        func loss() -> Double {
            softmaxCrossEntropy(logits: logits, labels: labels, classes: classes, batch: n, gradient: nil).loss
        }
        _ = softmaxCrossEntropy(logits: logits, labels: labels, classes: classes, batch: n, gradient: gradient.pointer)
        for i in 0..<classes * n {
            let saved = logits[i]
            logits[i] = saved + 1e-2
            let up = loss()
            logits[i] = saved - 1e-2
            let down = loss()
            logits[i] = saved
            XCTAssertEqual(Double(gradient.array[i]), (up - down) / 2e-2, accuracy: 1e-3)
        }
        // Uniform logits give log(classes).
        let uniform = [Float](repeating: 0.3, count: classes * n)
        XCTAssertEqual(softmaxCrossEntropy(logits: uniform, labels: labels, classes: classes, batch: n, gradient: nil).loss,
                       log(Double(classes)), accuracy: 1e-6)
    }

    func testSGDFollowsThePapersUpdateRule() {
        let p = Parameter(name: "w", shape: [1])
        p.value.pointer[0] = 2
        p.gradient.pointer[0] = 0.5
        p.momentum.pointer[0] = 0.1
        SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01).update(ParameterArena([p]))
        let v: Float = 0.9 * 0.1 - 0.01 * 0.1 * 2 - 0.1 * 0.5
        XCTAssertEqual(p.momentum.array[0], v, accuracy: 1e-7)
        XCTAssertEqual(p.value.array[0], 2 + v, accuracy: 1e-7)
    }
}
