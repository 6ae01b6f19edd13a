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
        XCTAssertEqual(plan.layers.map(\.towerOutputs), [[48], [128], [192], [192], [256], [4096], [4096], [1000]])
        let unsplit = try NetworkPlan(spec: Preset.paper.spec(classes: 1000), model: .unsplit)
        XCTAssertEqual(unsplit.layers.map(\.towerOutputs), [[96], [256], [384], [384], [256], [4096], [4096], [1000]])
    }

    func testParameterAndFLOPCountsFollowTheArithmetic() throws {
        let plan = try NetworkPlan(spec: Preset.small.spec(classes: 10), model: .split)
        let summary = try ModelSummary(plan: plan)
        // Per tower: conv1 12x(1x5x5)+12, conv2 32x(12x5x5)+32, conv3 48x(64x3x3)+48, conv4 48x(48x9)+48,
        // conv5 32x(48x9)+32, fc6 512x576+512, fc7 512x1024+512, fc8 5x1024+5.
        let perTower = [12 * 25 + 12, 32 * 12 * 25 + 32, 48 * 64 * 9 + 48, 48 * 48 * 9 + 48, 32 * 48 * 9 + 32,
                        512 * 576 + 512, 512 * 1024 + 512, 5 * 1024 + 5].reduce(0, +)
        XCTAssertEqual(summary.parametersPerRank, perTower)
        XCTAssertEqual(summary.parametersTotal, 2 * perTower)
        let conv1 = 2 * 12 * 32 * 32 * 25
        XCTAssertEqual(summary.rows.first?.flopsPerRank, conv1)
    }

    func testClassesSplitAsEvenlyAsTheyGoTowerZeroTheLarger() throws {
        XCTAssertEqual(NetworkPlan.evenShares(5, over: 2), [3, 2])
        XCTAssertEqual(NetworkPlan.evenShares(1000, over: 2), [500, 500])
        XCTAssertEqual(NetworkPlan.evenShares(7, over: 3), [3, 2, 2])
        for classes in [2, 3, 5, 7, 37, 101, 1000] {
            let plan = try NetworkPlan(spec: Preset.small.spec(classes: classes), model: .split)
            XCTAssertEqual(plan.layers.last?.towerOutputs, [(classes + 1) / 2, classes / 2], "\(classes) classes")
            XCTAssertEqual(plan.layers.dropLast().map { Set($0.towerOutputs).count }, Array(repeating: 1, count: 7), "hidden layers stay even")
            let ranks = try (0..<2).map { try plan.stages(ranks: 2, rank: $0) }
            // The ranks differ only in fc8's width; both gather all the logits.
            for (a, b) in zip(ranks[0], ranks[1]) where a.layer != "fc8" || a.op != .linear(groups: 1) {
                XCTAssertEqual(a.output, b.output, "\(a.layer) \(a.op.displayName)")
            }
            XCTAssertEqual(ranks.map { $0.first { $0.op == .linear(groups: 1) && $0.layer == "fc8" }?.output.channels },
                           [(classes + 1) / 2, classes / 2])
            XCTAssertEqual(ranks.map { $0.last?.rankChannels }, [[(classes + 1) / 2, classes / 2], [(classes + 1) / 2, classes / 2]])
            XCTAssertEqual(ranks.map { $0.last?.output.channels }, [classes, classes])
            // The grouped reference holds the whole layer in one process.
            XCTAssertEqual(try plan.stages(ranks: 1).last { $0.op == .linear(groups: 1) }?.output.channels, classes)
        }
        let five = try ModelSummary(plan: NetworkPlan(spec: Preset.small.spec(classes: 5), model: .split))
        let fc8 = try XCTUnwrap(five.rows.first { $0.layer == "fc8" && $0.op == "Linear" })
        XCTAssertEqual(fc8.outputsByRank.map(\.channels), [3, 2])
        XCTAssertEqual(fc8.parametersTotal, 5 * 1024 + 5)
        XCTAssertEqual(fc8.parametersPerRank, 3 * 1024 + 3)
        XCTAssertTrue(five.text.contains("3+2"), five.text)
        XCTAssertTrue(five.text.contains("The 5 classes split 3 + 2 over the towers"), five.text)
    }

    func testFewerThanTwoClassesAndUnevenHiddenWidthsAreRefused() {
        for model in ModelKind.allCases {
            XCTAssertThrowsError(try NetworkPlan(spec: Preset.small.spec(classes: 1), model: model)) { error in
                XCTAssertTrue("\(error)".contains("at least 2"), "\(error)")
            }
        }
        var spec = Preset.tiny.spec(classes: 4)
        spec.layers[5].outputs = 15
        XCTAssertThrowsError(try NetworkPlan(spec: spec, model: .split)) { error in
            XCTAssertTrue("\(error)".contains("fc6 has 15 outputs"), "\(error)")
        }
        XCTAssertNoThrow(try NetworkPlan(spec: spec, model: .unsplit))
    }

    func testSplitCannotRunOnThreeRanks() throws {
        let plan = try NetworkPlan(spec: Preset.small.spec(classes: 10), model: .split)
        XCTAssertThrowsError(try plan.stages(ranks: 3))
    }
}
