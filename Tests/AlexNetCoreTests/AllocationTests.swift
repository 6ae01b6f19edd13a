import AlexNetComm
import AlexNetCore
import AlexNetSplit
import Synchronization
import XCTest

/// Each layer's `allocations(...)` against the elements it really holds (`AllocationCounter`
/// counts every `Buffer(count:)` and max-pool's argmax while they live), and the memory estimate,
/// which sums those lists, against what a whole network holds.
final class AllocationTests: XCTestCase {
    /// What `body` returns, and the elements that it holds (or has freed) since `body` began.
    private func allocated<T>(_ body: () throws -> T) rethrows -> (T, Int) {
        let before = AllocationCounter.live
        let result = try body()
        return (result, AllocationCounter.live - before)
    }

    private func total(_ list: [Allocation]) -> Int { list.reduce(0) { $0 + $1.count } }

    /// A GEMM convolution with a fresh scratch allocates its columns and its share of the
    /// scratch; strides, padding, groups, odd sizes and batches of 1 and 5.
    func testConvolutionAllocatesWhatItReports() {
        let cases = [(Shape(channels: 3, height: 13, width: 11), 8, 3, 1, 1, 1), (Shape(channels: 4, height: 27, width: 27), 6, 5, 1, 2, 2),
                     (Shape(channels: 1, height: 31, width: 29), 4, 11, 4, 0, 1), (Shape(channels: 6, height: 7, width: 7), 4, 3, 1, 1, 2)]
        for (input, outputs, kernel, stride, padding, groups) in cases {
            for batch in [1, 5] {
                let (conv, count) = allocated {
                    Convolution(layerName: "c", input: input, outputs: outputs, kernel: kernel, stride: stride, padding: padding,
                                groups: groups, maxBatch: batch, scratch: Scratch())
                }
                let report = Convolution.allocations(input: input, output: conv.outputShape, kernel: kernel, groups: groups, maxBatch: batch)
                XCTAssertEqual(count, total(report), "\(input) k\(kernel) s\(stride) g\(groups) batch \(batch)")
                XCTAssertGreaterThan(report.ownElements, 0)
            }
        }
    }

    /// Switching to Winograd builds one engine per tile the passes use, each allocating its own
    /// list, and frees the columns (no pass reads them then); the scratch grows to the engine's
    /// request when that is larger than the columns'.
    func testWinogradEnginesAllocateWhatTheyReport() {
        for (input, outputs, kernel, padding, groups) in [(Shape(channels: 4, height: 13, width: 13), 6, 3, 1, 2),
                                                          (Shape(channels: 3, height: 15, width: 15), 8, 5, 2, 1)] {
            for (algorithm, tile) in [(ConvolutionAlgorithm.winograd2x2, 2), (.winograd4x4, 4)] {
                let scratch = Scratch()
                let conv = Convolution(layerName: "c", input: input, outputs: outputs, kernel: kernel, stride: 1, padding: padding,
                                       groups: groups, maxBatch: 3, scratch: scratch)
                let before = scratch.count
                let (_, count) = allocated { conv.use(ConvolutionAlgorithms(algorithm)) }
                let report = WinogradConvolution.allocations(outputTile: tile, kernel: kernel, input: input, output: conv.outputShape,
                                                             groups: groups, maxBatch: 3)
                let grown = max(0, Int(report.sharedElements) - before)
                let columns = Convolution.allocations(input: input, output: conv.outputShape, kernel: kernel, groups: groups, maxBatch: 3)
                    .first { $0.name == "columns" }!.count
                XCTAssertEqual(count, Int(report.ownElements) + grown - columns, "\(algorithm) on \(input) k\(kernel) g\(groups)")
                XCTAssertEqual(scratch.count, max(before, Int(report.sharedElements)), "the scratch holds the larger request")
            }
        }
    }

    /// LRN, max pooling and dropout allocate what they report; the other stages allocate nothing
    /// at all (their weights are made lazily, or live in the network's arena).
    func testOtherLayersAllocateWhatTheyReport() {
        let shape = Shape(channels: 6, height: 9, width: 7)
        for batch in [1, 4] {
            let (_, lrn) = allocated { LocalResponseNorm(layerName: "n", shape: shape, size: 5, alpha: 1e-4, beta: 0.75, k: 2, groups: 2, maxBatch: batch) }
            XCTAssertEqual(lrn, total(LocalResponseNorm.allocations(shape: shape, maxBatch: batch)))
            let (pool, argmax) = allocated { MaxPool(layerName: "p", input: shape, size: 3, stride: 2, maxBatch: batch) }
            XCTAssertEqual(argmax, total(MaxPool.allocations(output: pool.outputShape, maxBatch: batch)))
            let (_, mask) = allocated { Dropout(layerName: "d", layerIndex: 5, features: 40, rate: 0.5, groups: 2, firstTower: 0, maxBatch: batch) }
            XCTAssertEqual(mask, total(Dropout.allocations(features: 40, maxBatch: batch)))
        }
        let (stages, none) = allocated { () -> [Stage] in
            [Linear(layerName: "l", inputs: 12, outputs: 6, groups: 2), ReLU(layerName: "r", shape: shape),
             Flatten(layerName: "f", input: shape),
             CrossTowerGather(layerName: "g", localShape: shape, rankChannels: [6], backward: .sum, communicator: SingleProcessCommunicator())]
        }
        XCTAssertEqual(none, 0, "\(stages.map(\.layerName)) hold no buffers of their own")
    }

    /// A whole network allocates exactly what the estimate says it holds, less the input batch
    /// (which the run allocates): every preset and model, on one rank and as one of two.
    func testNetworkAllocatesWhatTheEstimateSays() throws {
        for preset in [Preset.tiny, .small] {
            for model in ModelKind.allCases {
                let plan = try NetworkPlan(spec: preset.spec(classes: 10), model: model)
                for ranks in Set([1, plan.towers]) {
                    let estimated = try (0..<ranks).reduce(0.0) { sum, rank in
                        let estimate = MemoryEstimate(stages: try plan.stages(ranks: ranks, rank: rank), input: plan.spec.input, batch: 3)
                        return sum + (estimate.total - estimate.input) / 4
                    }
                    // The ranks build at once, so only the whole group's count is theirs alone: rank 0
                    // reads it once every rank has built its network and before any is freed.
                    let before = AllocationCounter.live
                    let measured = Measured()
                    InProcessGroup(size: ranks).run { communicator in
                        let network = try! Network(plan: plan, communicator: communicator, maxBatch: 3, seed: 1)
                        communicator.barrier()
                        if communicator.rank == 0 { measured.value.withLock { $0 = AllocationCounter.live - before } }
                        communicator.barrier()
                        withExtendedLifetime(network) {}
                    }
                    XCTAssertEqual(Double(measured.value.withLock { $0 }), estimated, "\(preset) \(model) on \(ranks) ranks")
                }
            }
        }
    }

    /// An absurd batch gives an absurd estimate, never an overflow trap.
    func testAbsurdBatchSaturatesInsteadOfTrapping() throws {
        let plan = try NetworkPlan(spec: Preset.paper.spec(classes: 1000), model: .split)
        let estimate = MemoryEstimate(stages: try plan.stages(ranks: 2), input: plan.spec.input, batch: 1 << 60, winogradTiles: [2, 4])
        XCTAssertGreaterThan(estimate.total, 1e18)
        XCTAssertTrue(estimate.total.isFinite)
    }
}

/// What a rank thread hands back to the test.
private final class Measured: Sendable {
    let value = Mutex(0)
}
