import AlexNetCore
import AlexNetTools
import AlexNetTraining
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `compare` in simulation mode, on the tiny test spec and a few hundred Fashion-MNIST images.
final class ComparisonTests: XCTestCase {
    /// Parameters and forward FLOPs of a conv or linear layer, computed here by hand.
    struct Layer {
        var outputs: Int, inputs: Int, kernel: Int, outputPixels: Int
        var parameters: Int { outputs * inputs * kernel * kernel + outputs }
        var flops: Int { 2 * outputs * inputs * kernel * kernel * outputPixels }
    }

    /// The tiny spec (2x15x15 input) with Fashion-MNIST's 10 classes: conv1 5/2/2 -> 8x8, pool -> 3x3, conv2..conv4
    /// 3/1/1 stay 3x3, conv5 3/1/0 -> 1x1, then fc6, fc7, fc8. Widths per model as docs/models.md gives them.
    func tinyLayers(_ model: ModelKind) -> [Layer] {
        switch model {
        case .split:  // two towers of half the kernels; conv2/4/5 read their own tower's channels
            let tower = [Layer(outputs: 4, inputs: 2, kernel: 5, outputPixels: 64), Layer(outputs: 6, inputs: 4, kernel: 3, outputPixels: 9),
                         Layer(outputs: 4, inputs: 12, kernel: 3, outputPixels: 9), Layer(outputs: 4, inputs: 4, kernel: 3, outputPixels: 9),
                         Layer(outputs: 4, inputs: 4, kernel: 3, outputPixels: 1), Layer(outputs: 8, inputs: 8, kernel: 1, outputPixels: 1),
                         Layer(outputs: 8, inputs: 16, kernel: 1, outputPixels: 1), Layer(outputs: 5, inputs: 16, kernel: 1, outputPixels: 1)]
            return tower + tower
        case .unsplit:
            return [Layer(outputs: 8, inputs: 2, kernel: 5, outputPixels: 64), Layer(outputs: 12, inputs: 8, kernel: 3, outputPixels: 9),
                    Layer(outputs: 8, inputs: 12, kernel: 3, outputPixels: 9), Layer(outputs: 8, inputs: 8, kernel: 3, outputPixels: 9),
                    Layer(outputs: 8, inputs: 8, kernel: 3, outputPixels: 1), Layer(outputs: 16, inputs: 8, kernel: 1, outputPixels: 1),
                    Layer(outputs: 16, inputs: 16, kernel: 1, outputPixels: 1), Layer(outputs: 10, inputs: 16, kernel: 1, outputPixels: 1)]
        case .paper1GPU:  // half the kernels in conv1-conv4, full conv5 and fc layers
            return [Layer(outputs: 4, inputs: 2, kernel: 5, outputPixels: 64), Layer(outputs: 6, inputs: 4, kernel: 3, outputPixels: 9),
                    Layer(outputs: 4, inputs: 6, kernel: 3, outputPixels: 9), Layer(outputs: 4, inputs: 4, kernel: 3, outputPixels: 9),
                    Layer(outputs: 8, inputs: 4, kernel: 3, outputPixels: 1), Layer(outputs: 16, inputs: 8, kernel: 1, outputPixels: 1),
                    Layer(outputs: 16, inputs: 16, kernel: 1, outputPixels: 1), Layer(outputs: 10, inputs: 16, kernel: 1, outputPixels: 1)]
        }
    }

    func testCompareProducesThreeModelsWithTheSpecsArithmeticAndTheSameDataOrder() throws {
        let directory = NSTemporaryDirectory() + "compare-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = Comparison.Options()
        options.training.preset = .tiny
        options.training.epochs = 2
        options.training.batchSize = 16
        options.training.trainLimit = 96
        options.training.testLimit = 32
        options.training.logEvery = 1000
        options.training.runDirectory = directory
        options.seeds = 2
        let code = Simulation.run(towers: 2) { [options] in Comparison.run(options, communicator: $0, launch: $1) }
        XCTAssertEqual(code, 0)

        // JSON: every run, with its counts and per-epoch data order.
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/compare.json"))) as? [String: Any])
        let runs = try XCTUnwrap(json["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.count, 6)
        for model in ModelKind.allCases {
            let layers = tinyLayers(model)
            let mine = runs.filter { $0["model"] as? String == model.rawValue }
            XCTAssertEqual(mine.count, 2, model.rawValue)
            for run in mine {
                XCTAssertEqual(run["parameters"] as? Int, layers.map(\.parameters).reduce(0, +), model.rawValue)
                XCTAssertEqual(run["forward_flops"] as? Int, layers.map(\.flops).reduce(0, +), model.rawValue)
            }
        }
        func orders(_ run: [String: Any]) -> [String] { (run["epochs"] as? [[String: Any]] ?? []).compactMap { $0["data_order"] as? String } }
        for seed in [1, 2] {
            let seedRuns = runs.filter { $0["seed"] as? Int == seed }
            XCTAssertEqual(seedRuns.count, 3)
            XCTAssertEqual(Set(seedRuns.map(orders)).count, 1, "the three models see the same data order with seed \(seed)")
            XCTAssertEqual(orders(seedRuns[0]).count, 2)
            XCTAssertNotEqual(orders(seedRuns[0])[0], orders(seedRuns[0])[1], "epochs are shuffled differently")
        }
        XCTAssertNotEqual(orders(runs[0]), orders(runs[3]), "seeds change the order")
        let differences = try XCTUnwrap(json["differences"] as? [[String: Any]])
        XCTAssertEqual(differences.compactMap { $0["split_minus"] as? String }, ["unsplit", "paper-1gpu"])

        // Markdown: one row per model, holding the run's own numbers.
        let markdown = try String(contentsOfFile: directory + "/compare.md", encoding: .utf8)
        for model in ModelKind.allCases {
            let top1 = runs.filter { $0["model"] as? String == model.rawValue }.compactMap {
                ($0["epochs"] as? [[String: Any]])?.last?["test_top1"] as? Double
            }
            let mean = top1.reduce(0, +) / 2 * 100
            let row = try XCTUnwrap(markdown.split(separator: "\n").first { $0.hasPrefix("| \(model.rawValue) |") }, model.rawValue)
            XCTAssertTrue(row.contains(String(format: "%.2f ±", mean)), "\(row) should hold the mean top-1 \(mean)")
        }
        XCTAssertTrue(markdown.contains("split − unsplit"))
        XCTAssertTrue(markdown.contains("spread"))

        // CSV: a header and three rows of nine columns.
        let csv = try String(contentsOfFile: directory + "/compare.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 4)
        XCTAssertEqual(csv[0].split(separator: ",").count, 9)
        XCTAssertEqual(Set(csv.dropFirst().map { String($0.split(separator: ",")[0]) }), Set(ModelKind.allCases.map(\.rawValue)))

        // SVG: well-formed XML, a line per model in each of the two panels.
        let svgData = try Data(contentsOf: URL(fileURLWithPath: directory + "/compare.svg"))
        let parser = XMLParser(data: svgData)
        XCTAssertTrue(parser.parse(), "compare.svg must be well-formed")
        let svg = String(decoding: svgData, as: UTF8.self)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 6)
        // Each run also left its own metrics and plot.
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/seed-2/paper-1gpu/metrics.jsonl"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/seed-1/split/training.svg"))
    }

    func testStatisticsAndVerdicts() {
        let (mean, std) = ComparisonReport.statistics([0.01, 0.03])
        XCTAssertEqual(mean, 0.02, accuracy: 1e-12)
        XCTAssertEqual(std, (0.0002).squareRoot(), accuracy: 1e-12)  // sample standard deviation
        XCTAssertEqual(ComparisonReport.verdict([0.05, 0.06]), "larger than its spread")
        XCTAssertEqual(ComparisonReport.verdict([0.05, -0.06]), "within its spread")
    }
}
