import Foundation

import Foundation

/// The per-layer table that `summary` prints, in the spirit of the d2l chapter's shape printout,
/// computed from the plan alone (nothing is allocated).
public struct ModelSummary {
    public struct Row {
        public var layer: String
        public var op: String
        /// What a conv or linear layer reads: the image, its own tower, or both towers.
        public var reads: String
        /// Rank 0's output; the ranks differ only at the class layer when the classes do not
        /// split evenly (`outputsByRank`), and rank 0 then holds the larger share.
        public var outputPerRank: Shape
        public var outputsByRank: [Shape]
        public var outputTotal: Shape
        /// Rank 0's parameters and FLOPs, and those of all ranks together.
        public var parametersPerRank: Int
        public var parametersTotal: Int
        public var flopsPerRank: Int
        public var flopsTotal: Int
    }

    public let plan: NetworkPlan
    public let rows: [Row]

    /// The table for one tower per rank.
    public init(plan: NetworkPlan) throws {
        self.plan = plan
        let ranks = plan.towers
        let byRank = try (0..<ranks).map { try plan.stages(ranks: ranks, rank: $0) }
        var partial = false
        var rows: [Row] = []
        for (index, stage) in byRank[0].enumerated() {
            let same = byRank.map { $0[index] }
            var reads = ""
            switch stage.op {
            case .convolution, .linear:
                let layer = plan.layers[stage.layerIndex]
                reads = stage.layerIndex == 0 ? "image" : (layer.readsAllTowers ? (ranks > 1 ? "both towers" : "all") : "own tower")
                partial = ranks > 1
            case .gather:
                partial = false
            default:
                break
            }
            var total = stage.output
            if partial { total.channels = same.map(\.output.channels).reduce(0, +) }
            rows.append(Row(layer: stage.layer, op: stage.op.displayName, reads: reads, outputPerRank: stage.output,
                            outputsByRank: same.map(\.output), outputTotal: total, parametersPerRank: stage.parameterCount,
                            parametersTotal: same.map(\.parameterCount).reduce(0, +), flopsPerRank: stage.forwardFLOPs,
                            flopsTotal: same.map(\.forwardFLOPs).reduce(0, +)))
        }
        self.rows = rows
    }

    public var parametersTotal: Int { rows.reduce(0) { $0 + $1.parametersTotal } }
    public var flopsTotal: Int { rows.reduce(0) { $0 + $1.flopsTotal } }
    public var parametersPerRank: Int { rows.reduce(0) { $0 + $1.parametersPerRank } }
    public var flopsPerRank: Int { rows.reduce(0) { $0 + $1.flopsPerRank } }

    /// The printed table.
    public var text: String { text(memory: nil) }

    /// The printed table; with `memory` (the same stages at a batch), each layer's activation and
    /// workspace memory per rank as two more columns, and the rank's memory by kind below.
    public func text(memory: MemoryEstimate?) -> String {
        let spec = plan.spec
        var lines = ["\(spec.name)/\(plan.model.rawValue): input \(spec.input), \(spec.classes) classes, \(plan.towers) tower(s)" +
                     (plan.towers > 1 ? ", one per rank" : "")]
        var header = ["layer", "op", "reads", "output/rank", "output", "params/rank", "params", "MFLOP/rank", "MFLOP"]
        if let memory { header += ["act MiB/rank (b=\(memory.batch))", "work MiB/rank"] }
        var table = [header]
        func m(_ flops: Int) -> String { flops == 0 ? "-" : String(format: "%.2f", Double(flops) / 1e6) }
        func p(_ count: Int) -> String { count == 0 ? "-" : "\(count)" }
        func mib(_ bytes: Double) -> String { bytes == 0 ? "-" : String(format: "%.1f", bytes / 1_048_576) }
        for (i, r) in rows.enumerated() {
            let perRank = Set(r.outputsByRank.map(\.description)).count == 1 ? "\(r.outputPerRank)"
                : r.outputsByRank.map(\.description).joined(separator: "+")
            var row = [r.layer, r.op, r.reads, perRank, "\(r.outputTotal)", p(r.parametersPerRank),
                       p(r.parametersTotal), m(r.flopsPerRank), m(r.flopsTotal)]
            if let memory { row += [mib(memory.stages[i].activations), mib(memory.stages[i].workspace)] }
            table.append(row)
        }
        var total = ["total", "", "", "", "", "\(parametersPerRank)", "\(parametersTotal)", m(flopsPerRank), m(flopsTotal)]
        if let memory { total += [mib(memory.activations), mib(memory.workspace - memory.sharedScratch)] }
        table.append(total)
        let widths = header.indices.map { c in table.map { $0[c].count }.max()! }
        for row in table {
            lines.append(row.enumerated().map { c, cell in
                c < 3 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  "))
        }
        if let last = plan.layers.last, Set(last.towerOutputs).count > 1 {
            lines.append("The \(spec.classes) classes split \(last.towerOutputs.map(String.init).joined(separator: " + ")) over the towers (tower 0 the larger share); params/rank and MFLOP/rank are rank 0's.")
        }
        lines.append("FLOPs are forward multiply-adds x2 per image; a training step costs about 3x.")
        if let memory { lines.append(memoryLine(memory)) }
        return lines.joined(separator: "\n")
    }

    /// One rank's memory at the estimate's batch, by kind.
    func memoryLine(_ e: MemoryEstimate) -> String {
        "memory per rank at batch \(e.batch): \(formatBytes(e.total)) = activations and their gradients \(formatBytes(e.activations))" +
            " + workspaces \(formatBytes(e.workspace)) (im2col columns, LRN, pool and dropout buffers; \(formatBytes(e.sharedScratch)) of col2im scratch shared by the convolutions)" +
            " + weights, gradients and momentum \(formatBytes(e.parameters)) + input batch \(formatBytes(e.input))"
    }
}
