import AlexNetCore
import AlexNetData
import AlexNetTraining
import Foundation

/// The side-by-side table of `compare`, its differences, and its files.
public struct ComparisonReport {
    public let preset: String
    public let epochs: Int
    public let results: [RunResult]
    public let unfinished: [String]

    /// Models in the order they were trained, each with its finished runs (one per seed).
    public var models: [(model: ModelKind, runs: [RunResult])] {
        var order: [ModelKind] = []
        for r in results where !order.contains(r.model) { order.append(r.model) }
        return order.map { m in (m, results.filter { $0.model == m }) }
    }

    /// Mean and sample standard deviation.
    public static func statistics(_ values: [Double]) -> (mean: Double, std: Double) {
        guard !values.isEmpty else { return (.nan, .nan) }
        let mean = values.reduce(0, +) / Double(values.count)
        guard values.count > 1 else { return (mean, 0) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return (mean, variance.squareRoot())
    }

    static func format(_ values: [Double], scale: Double = 100, digits: Int = 2) -> String {
        let (mean, std) = statistics(values.map { $0 * scale })
        let f = "%.\(digits)f"
        return values.count > 1 ? String(format: "\(f) ± \(f)", mean, std) : String(format: f, mean)
    }

    /// One summary row per model: the table's cells, already formatted.
    public var rows: [[String]] {
        models.map { model, runs in
            let first = runs[0]
            return [model.rawValue, "\(first.parameters)", String(format: "%.2f", Double(first.forwardFLOPs) / 1e6),
                    formatDuration(Self.statistics(runs.map(\.seconds)).mean),
                    String(format: "%.0f", Self.statistics(runs.map(\.imagesPerSecond)).mean),
                    Self.format(runs.compactMap { $0.final?.trainLoss }, scale: 1, digits: 4),
                    Self.format(runs.compactMap { $0.final?.testTop1 }),
                    Self.format(runs.compactMap { $0.final?.testTop5 }),
                    runs.compactMap { $0.best.map { "\($0.epoch)" } }.joined(separator: ", ")]
        }
    }

    public static let header = ["model", "parameters", "forward MFLOP/image", "wall time", "train img/s",
                                "final train loss", "test top-1 %", "test top-5 %", "best epoch"]

    /// Paired per-seed differences `split - other` in final test accuracy.
    public struct Difference {
        public var other: ModelKind
        public var top1: [Double]
        public var top5: [Double]
    }

    public var differences: [Difference] {
        let split = results.filter { $0.model == .split }
        return [ModelKind.unsplit, .paper1GPU].compactMap { other in
            let pairs = split.compactMap { s in results.first { $0.model == other && $0.seed == s.seed }.map { (s, $0) } }
            guard !pairs.isEmpty else { return nil }
            return Difference(other: other,
                              top1: pairs.compactMap { s, o in s.final.flatMap { a in o.final.map { a.testTop1 - $0.testTop1 } } },
                              top5: pairs.compactMap { s, o in s.final.flatMap { a in o.final.map { a.testTop5 - $0.testTop5 } } })
        }
    }

    /// "larger than its spread" when |mean| exceeds the standard deviation over seeds.
    public static func verdict(_ values: [Double]) -> String {
        let (mean, std) = statistics(values)
        guard values.count > 1 else { return "one seed, so no spread to judge it by" }
        return abs(mean) > std ? "larger than its spread" : "within its spread"
    }

    public var markdown: String {
        let runsPerModel = models.first?.runs.count ?? 0
        var lines = ["## \(preset): split vs unsplit vs paper-1gpu, \(epochs) epochs, \(runsPerModel) seed(s)", ""]
        lines.append("| " + Self.header.joined(separator: " | ") + " |")
        lines.append("|" + String(repeating: "---|", count: Self.header.count))
        for row in rows { lines.append("| " + row.joined(separator: " | ") + " |") }
        lines.append("")
        for d in differences {
            lines.append("- split − \(d.other.rawValue): top-1 \(Self.format(d.top1)) points (\(Self.verdict(d.top1))), "
                         + "top-5 \(Self.format(d.top5)) points (\(Self.verdict(d.top5))).")
        }
        if let launch = models.map({ "\($0.model.rawValue): \($0.runs[0].launch)" }).joined(separator: "; ") as String?, !launch.isEmpty {
            lines.append("- How they ran: \(launch).")
        }
        if !unfinished.isEmpty { lines.append("- Not finished (stopped): \(unfinished.joined(separator: ", ")).") }
        return lines.joined(separator: "\n")
    }

    public var csv: String {
        var lines = [Self.header.map { $0.replacingOccurrences(of: " ", with: "_") }.joined(separator: ",")]
        for row in rows { lines.append(row.map { $0.contains(",") ? "\"\($0)\"" : $0 }.joined(separator: ",")) }
        return lines.joined(separator: "\n") + "\n"
    }

    public var json: String {
        typealias Number = JSONText.Number
        struct Epoch: Encodable {
            var epoch: Int, trainLoss: Number, trainAccuracy: Number, testLoss: Number, testTop1: Number, testTop5: Number
            var seconds: Number, dataOrder: String
        }
        struct Run: Encodable {
            var model: String, seed: UInt64, parameters: Int, forwardFlops: Int, seconds: Number, imagesPerSecond: Number
            var launch: String, epochs: [Epoch]
        }
        struct Difference: Encodable { var splitMinus: String, top1: [Number], top5: [Number] }
        struct Report: Encodable { var preset: String, epochs: Int, runs: [Run], differences: [Difference], unfinished: [String] }
        let runs = results.map { r in
            Run(model: r.model.rawValue, seed: r.seed, parameters: r.parameters, forwardFlops: r.forwardFLOPs, seconds: Number(r.seconds),
                imagesPerSecond: Number(r.imagesPerSecond), launch: r.launch, epochs: r.epochs.map {
                    Epoch(epoch: $0.epoch, trainLoss: Number($0.trainLoss), trainAccuracy: Number($0.trainAccuracy), testLoss: Number($0.testLoss),
                          testTop1: Number($0.testTop1), testTop5: Number($0.testTop5), seconds: Number($0.seconds), dataOrder: "\($0.dataOrder)")
                })
        }
        let differences = self.differences.map {
            Difference(splitMinus: $0.other.rawValue, top1: $0.top1.map(Number.init), top5: $0.top5.map(Number.init))
        }
        return JSONText.encode(Report(preset: preset, epochs: epochs, runs: runs, differences: differences, unfinished: unfinished)) + "\n"
    }

    /// Mean over seeds, per epoch, of `value`.
    func curve(_ runs: [RunResult], _ value: (EpochResult) -> Double) -> [(Double, Double)] {
        let count = runs.map(\.epochs.count).min() ?? 0
        return (0..<count).map { e in (Double(e + 1), runs.map { value($0.epochs[e]) }.reduce(0, +) / Double(runs.count)) }
    }

    public var svg: String {
        let series = models.map { ($0.model.rawValue, $0.runs) }
        return LinePlot(panels: [
            LinePlot.Panel(title: "train loss", series: series.map { ($0.0, curve($0.1) { $0.trainLoss }) }),
            LinePlot.Panel(title: "test top-1 accuracy (%)", series: series.map { ($0.0, curve($0.1) { 100 * $0.testTop1 }) }),
        ], xLabel: "epoch").svg
    }

    /// Writes compare.md, compare.csv, compare.json and compare.svg into `directory`.
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, text) in [("compare.md", markdown + "\n"), ("compare.csv", csv), ("compare.json", json), ("compare.svg", svg)] {
            try AtomicFile.write(Data(text.utf8), to: "\(directory)/\(name)")
        }
    }
}
