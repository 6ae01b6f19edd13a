import AlexNetComm
import AlexNetCore
import AlexNetSplit
import XCTest

/// docs/architecture.md, "The equivalences the tests hold": the split model, its towers on two simulated ranks that meet through
/// all-gather and reduce-scatter, equals a one-process reference that holds both towers as
/// grouped convolutions with no communication: loss and every gradient within 1e-5 relative.
final class SplitEquivalenceTests: XCTestCase {
    let n = 6
    let seed: UInt64 = 3

    func batch(step: Int, spec: ModelSpec) -> ([Float], [Int32]) {
        var random = KeyedRandom(77, UInt64(step))
        let pixels = (0..<spec.input.size * n).map { _ in Float(random.normal()) }
        let labels = (0..<n).map { _ in Int32(random.below(spec.classes)) }
        return (pixels, labels)
    }

    func load(_ pixels: [Float], _ labels: [Int32], spec: ModelSpec) -> Batch {
        let batch = Batch(shape: spec.input, capacity: labels.count)
        batch.fill(pixels: pixels, labels: labels)
        return batch
    }

    func testSplitOverTwoRanksEqualsGroupedReference() throws {
        // Even, and odd (fc8's classes split 2+1, 3+2, 4+3, the logits gathered with per-rank counts).
        for classes in [4, 3, 5, 7] { try assertSplitEqualsGroupedReference(.gemm, classes: classes) }
    }

    /// The same under Winograd (F(2x2) and F(4x4) on every stride-1 layer): each tower's
    /// convolution is the reference's group, computed by the same transforms.
    func testSplitEqualsGroupedReferenceUnderWinograd() throws {
        try assertSplitEqualsGroupedReference(.winograd, classes: 4)
        try assertSplitEqualsGroupedReference(.winograd4x4, classes: 5)
    }

    /// A network of `plan` on `communicator`, its convolutions on `request`'s algorithms.
    func network(_ plan: NetworkPlan, _ communicator: Communicator, _ request: ConvolutionAlgorithmRequest) throws -> Network {
        let network = try Network(plan: plan, communicator: communicator, maxBatch: n, seed: seed)
        try network.use(network.fixedPlan(request))
        return network
    }

    func assertSplitEqualsGroupedReference(_ request: ConvolutionAlgorithmRequest, classes: Int) throws {
        let spec = Preset.tiny.spec(classes: classes)
        let plan = try NetworkPlan(spec: spec, model: .split)
        let reference = try network(plan, SingleProcessCommunicator(), request)
        let group = InProcessGroup(size: 2)
        // nonisolated(unsafe): rank thread r uses only towers[r], and `run` starts and joins the threads, ordering their use against this thread's.
        nonisolated(unsafe) let towers = try (0..<2).map { try network(plan, group.communicator(rank: $0), request) }
        XCTAssertEqual(reference.convolutions.filter { $0.algorithms.forward != .gemm }.count, request == .gemm ? 0 : 4, "\(request)")
        XCTAssertTrue(reference.stages.contains { ($0 as? Convolution)?.groups == 2 }, "the reference must use grouped convolutions")
        XCTAssertFalse(reference.stages.contains { $0 is CrossTowerGather }, "the reference must not communicate")
        XCTAssertEqual(towers[0].stages.filter { $0 is CrossTowerGather }.count, 5)  // conv3, fc6, fc7, fc8 inputs and the logits

        let sgd = SGD(learningRate: 0.05)
        for step in 0..<3 {
            let (pixels, labels) = batch(step: step, spec: spec)
            let context = StepContext(training: true, step: step, seed: seed)
            // nonisolated(unsafe): the rank threads only read the batch.
            nonisolated(unsafe) let batch = load(pixels, labels, spec: spec)
            let expected = reference.run(batch, context: context)
            let losses = group.collect { communicator in towers[communicator.rank].run(batch, context: context).loss }
            XCTAssertEqual(losses[0], losses[1], "both ranks hold all logits, so the same loss")
            XCTAssertEqual(losses[0], expected.loss, accuracy: 1e-5 * abs(expected.loss), "\(classes) classes, step \(step) loss")

            for whole in reference.parameters {
                var offset = 0  // tower 1's rows follow tower 0's, however many tower 0 holds
                for (rank, tower) in towers.enumerated() {
                    let part = try XCTUnwrap(tower.parameter(named: whole.name))
                    let rows = offset..<(offset + part.count)
                    offset += part.count
                    let block = Array(whole.gradient.array[rows])
                    if step == 0 {
                        XCTAssertEqual(part.value.array, Array(whole.value.array[rows]), "\(whole.name) tower \(rank) starts from the same weights")
                    }
                    let scale = max(block.map { abs($0) }.max() ?? 0, 1e-12)
                    let difference = zip(block, part.gradient.array).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThanOrEqual(difference / scale, 1e-5, "\(classes) classes, step \(step) \(whole.name) tower \(rank)")
                    XCTAssertGreaterThan(scale, 1e-9, "\(whole.name) gets a gradient")
                }
                XCTAssertEqual(offset, whole.count, "\(whole.name): the towers together hold the whole layer")
            }
            sgd.update(reference.arena)
            towers.forEach { sgd.update($0.arena) }
        }
    }

    /// The whole reference network against finite differences, through every layer kind at once,
    /// with even and odd class counts. A nudge can push a ReLU or max-pool input across its kink,
    /// which spoils that difference quotient; such a coordinate shows itself by different slopes
    /// above and below the point, or different quotients at two step sizes, and is skipped.
    /// Every other coordinate must match.
    func testReferenceNetworkGradientMatchesFiniteDifferences() throws {
        for classes in [4, 3, 5, 7] { try assertReferenceGradientMatchesFiniteDifferences(.gemm, classes: classes) }
    }

    func testReferenceNetworkGradientMatchesFiniteDifferencesUnderWinograd() throws {
        try assertReferenceGradientMatchesFiniteDifferences(.winograd, classes: 4)
        try assertReferenceGradientMatchesFiniteDifferences(.winograd4x4, classes: 5)
    }

    func assertReferenceGradientMatchesFiniteDifferences(_ request: ConvolutionAlgorithmRequest, classes: Int) throws {
        let spec = Preset.tiny.spec(classes: classes)
        let network = try network(NetworkPlan(spec: spec, model: .split), SingleProcessCommunicator(), request)
        let (pixels, labels) = batch(step: 0, spec: spec)
        let input = load(pixels, labels, spec: spec)
        let context = StepContext(training: true, step: 5, seed: seed)
        network.run(input, context: context)
        func loss() -> Double {
            network.forward(input, context: context)  // same step, so the same dropout masks
            return softmaxCrossEntropy(logits: network.logits, labels: labels, classes: spec.classes, batch: n, gradient: nil).loss
        }
        var (checked, skipped) = (0, 0)
        for parameter in network.parameters {
            let analytic = parameter.gradient.array
            for i in stride(from: 0, to: parameter.count, by: max(1, parameter.count / 7)) {
                let slopes = oneSidedDifferences(parameter.value.pointer, i, epsilon: 1e-4, loss: loss)
                let central = (slopes.forward + slopes.backward) / 2
                let coarse = centralDifference(parameter.value.pointer, i, epsilon: 3e-4, loss: loss)
                let scale = max(abs(central), 2e-3)
                // A kink near x bends the loss: the slopes above and below x differ, or the
                // quotients over two widths do.
                if abs(slopes.forward - slopes.backward) > 2e-2 * scale || abs(central - coarse) > 2e-2 * scale {
                    skipped += 1
                    continue
                }
                checked += 1
                XCTAssertEqual(Double(analytic[i]), central, accuracy: 3e-2 * scale, "\(request), \(classes) classes: \(parameter.name)[\(i)]")
            }
        }
        XCTAssertLessThanOrEqual(skipped, (checked + skipped) / 3, "too many coordinates sit on a kink to judge")
        XCTAssertGreaterThan(checked, 80)
    }
}
