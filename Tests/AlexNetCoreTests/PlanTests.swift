import AlexNetCore
import XCTest

/// The presets and models of DESIGN.md §1-§3, as the plan builds them.
final class PlanTests: XCTestCase {
    func shapes(_ stages: [StagePlan], _ ops: Set<String>) -> [String] {
        stages.filter { ops.contains($0.op.displayName) }.map { "\($0.op.displayName) \($0.output)" }
    }

    func testD2LUnsplitHasTheChaptersShapes() throws {
        let plan = try NetworkPlan(spec: Preset.d2l.spec(classes: 10), model: .unsplit)
        let stages = try plan.stages(ranks: 1)
        XCTAssertEqual(shapes(stages, ["Conv2d", "MaxPool2d", "Flatten", "Linear"]), [
            "Conv2d 96x54x54", "MaxPool2d 96x26x26", "Conv2d 256x26x26", "MaxPool2d 256x12x12",
            "Conv2d 384x12x12", "Conv2d 384x12x12", "Conv2d 256x12x12", "MaxPool2d 256x5x5",
            "Flatten 6400", "Linear 4096", "Linear 4096", "Linear 10",
        ])
        XCTAssertFalse(stages.contains { $0.op.displayName == "LRN" }, "d2l has no LRN")
    }

    func testPaperSplitMatchesTheLayerTable() throws {
        let plan = try NetworkPlan(spec: Preset.paper.spec(classes: 1000), model: .split)
        let stages = try plan.stages(ranks: 2)
        XCTAssertEqual(shapes(stages, ["Conv2d", "MaxPool2d", "Linear"]), [
            "Conv2d 48x55x55", "MaxPool2d 48x27x27", "Conv2d 128x27x27", "MaxPool2d 128x13x13",
            "Conv2d 192x13x13", "Conv2d 192x13x13", "Conv2d 128x13x13", "MaxPool2d 128x6x6",
            "Linear 2048", "Linear 2048", "Linear 500",
        ])
        // What each layer reads: conv2/4/5 their own 48/192/192 channels, conv3 all 256, fc6 all 9216.
        let inputs = stages.filter { ["Conv2d", "Linear"].contains($0.op.displayName) }.map { $0.input.channels }
        XCTAssertEqual(inputs, [3, 48, 256, 192, 192, 9216, 4096, 4096])
        let groups = stages.compactMap { if case let .convolution(_, _, _, g) = $0.op { g } else { nil } }
        XCTAssertEqual(groups, [1, 1, 1, 1, 1])
        // Where the towers meet.
        XCTAssertEqual(stages.filter { $0.op == .gather(.sum) }.map(\.layer), ["conv3", "fc6", "fc7", "fc8"])
        XCTAssertEqual(stages.last?.op, .gather(.slice))
    }

    func testGroupedReferenceHoldsBothTowers() throws {
        let plan = try NetworkPlan(spec: Preset.paper.spec(classes: 1000), model: .split)
        let stages = try plan.stages(ranks: 1)
        let convs = stages.compactMap { s -> String? in
            if case let .convolution(_, _, _, g) = s.op { return "\(s.layer) \(s.output.channels) g\(g)" } else { return nil }
        }
        XCTAssertEqual(convs, ["conv1 96 g1", "conv2 256 g2", "conv3 384 g1", "conv4 384 g2", "conv5 256 g2"])
        XCTAssertFalse(stages.contains { if case .gather = $0.op { true } else { false } })
        XCTAssertTrue(stages.contains { $0.op == .lrn(groups: 2) })
    }

    func testPaperOneGPUBaselineHalvesConv1ToConv4() throws {
        let plan = try NetworkPlan(spec: Preset.paper.spec(classes: 1000), model: .paper1GPU)
        XCTAssertEqual(plan.layers.map(\.outputsPerTower), [48, 128, 192, 192, 256, 4096, 4096, 1000])
        let unsplit = try NetworkPlan(spec: Preset.paper.spec(classes: 1000), model: .unsplit)
        XCTAssertEqual(unsplit.layers.map(\.outputsPerTower), [96, 256, 384, 384, 256, 4096, 4096, 1000])
    }

    func testParameterAndFLOPCountsFollowTheArithmetic() throws {
        let plan = try NetworkPlan(spec: Preset.small.spec(classes: 10), model: .split)
        let summary = ModelSummary(plan: plan, stages: try plan.stages(ranks: 2))
        // Per tower: conv1 12x(1x5x5)+12, conv2 32x(12x5x5)+32, conv3 48x(64x3x3)+48, conv4 48x(48x9)+48,
        // conv5 32x(48x9)+32, fc6 512x576+512, fc7 512x1024+512, fc8 5x1024+5.
        let perTower = [12 * 25 + 12, 32 * 12 * 25 + 32, 48 * 64 * 9 + 48, 48 * 48 * 9 + 48, 32 * 48 * 9 + 32,
                        512 * 576 + 512, 512 * 1024 + 512, 5 * 1024 + 5].reduce(0, +)
        XCTAssertEqual(summary.parametersPerRank, perTower)
        XCTAssertEqual(summary.parametersTotal, 2 * perTower)
        let conv1 = 2 * 12 * 32 * 32 * 25
        XCTAssertEqual(summary.rows.first?.flopsPerRank, conv1)
    }

    func testOddClassCountCannotSplit() {
        XCTAssertThrowsError(try NetworkPlan(spec: Preset.small.spec(classes: 7), model: .split)) { error in
            XCTAssertTrue("\(error)".contains("fc8"))
        }
        XCTAssertNoThrow(try NetworkPlan(spec: Preset.small.spec(classes: 7), model: .unsplit))
    }

    func testSplitCannotRunOnThreeRanks() throws {
        let plan = try NetworkPlan(spec: Preset.small.spec(classes: 10), model: .split)
        XCTAssertThrowsError(try plan.stages(ranks: 3))
    }
}
