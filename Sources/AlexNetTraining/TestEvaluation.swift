import AlexNetCore
import AlexNetData
import AlexNetSplit
import Foundation

/// Testing during and after training: the centre crop, or the paper's ten patches averaged.
extension Trainer {
    /// Test loss, top-1 and top-5 accuracy (top-k with k = min(5, classes): `topK`).
    public struct Evaluation: Codable, Sendable {
        public var loss: Double, top1: Double, top5: Double

        /// The k of the "top-5" figure: 5, or every class when there are fewer.
        public static func topK(classes: Int) -> Int { min(5, classes) }
        /// How reports name that figure: "top-5", or "top-3" with 3 classes.
        public static func topName(classes: Int) -> String { "top-\(topK(classes: classes))" }
        /// The line that says so when there are 5 classes or fewer; nil otherwise.
        public static func topNote(classes: Int) -> String? {
            if classes > 5 { return nil }
            return classes == 5 ? "note: 5 classes, so every image passes top-5"
                : "note: \(classes) classes, so top-5 is reported as top-\(classes), which every image passes"
        }
    }

    /// Test loss, top-1 and top-5 over `count` test images (no dropout); meaningful on rank 0.
    /// With `tenCrop`, the softmax is averaged over the paper's ten patches of each image.
    /// Nil when a stop was requested.
    /// The coordinator packs test images, `transport` moves them and fills `batch` on every rank.
    public static func evaluate(network: Network, batch: Batch, coordinator: Coordinator?, count: Int, transport: BatchTransport, seed: UInt64,
                         tenCrop: Bool = false) -> Evaluation? {
        if tenCrop {
            return evaluateViews(10, network: network, batch: batch, coordinator: coordinator, count: count, transport: transport, seed: seed)
        }
        var (loss, top1, top5) = (0.0, 0, 0)
        let classes = network.plan.classes
        for first in stride(from: 0, to: count, by: network.maxBatch) {
            let n = min(network.maxBatch, count - first)
            guard transport.moveTest(first..<(first + n), view: 0, coordinator: coordinator, into: batch) else { return nil }
            let result = network.run(batch, context: network.testContext(images: n, seed: seed))
            loss += result.loss * Double(n)
            top1 += result.correct
            for b in 0..<n where topClasses(logits: network.logits, classes: classes, batch: n, sample: b, k: Evaluation.topK(classes: classes)).contains(batch.label(b)) {
                top5 += 1
            }
        }
        let total = Double(max(count, 1))
        return Evaluation(loss: loss / total, top1: Double(top1) / total, top5: Double(top5) / total)
    }

    /// `evaluate` over `views` test views of each image, the softmax averaged over them.
    public static func evaluateViews(_ views: Int, network: Network, batch: Batch, coordinator: Coordinator?, count: Int,
                              transport: BatchTransport, seed: UInt64) -> Evaluation? {
        var (loss, top1, top5) = (0.0, 0, 0)
        let classes = network.plan.classes
        for first in stride(from: 0, to: count, by: network.maxBatch) {
            let n = min(network.maxBatch, count - first)
            var probabilities = [Double](repeating: 0, count: classes * n)  // [classes, n], as the logits
            for view in 0..<views {
                guard transport.moveTest(first..<(first + n), view: view, coordinator: coordinator, into: batch) else { return nil }
                network.forward(batch, context: network.testContext(images: n, seed: seed))
                let logits = network.logitValues(batch: n)
                for b in 0..<n {
                    let p = softmaxProbabilities(logits: logits, classes: classes, batch: n, sample: b)
                    for k in 0..<classes { probabilities[k * n + b] += p[k] / Double(views) }
                }
            }
            for b in 0..<n {
                let label = batch.label(b)
                let column = (0..<classes).map { probabilities[$0 * n + b] }
                loss -= log(max(column[label], 1e-30))
                let ranked = column.indices.sorted { column[$0] > column[$1] }
                if ranked[0] == label { top1 += 1 }
                if ranked.prefix(Evaluation.topK(classes: classes)).contains(label) { top5 += 1 }
            }
        }
        let total = Double(max(count, 1))
        return Evaluation(loss: loss / total, top1: Double(top1) / total, top5: Double(top5) / total)
    }
}
