import Foundation

/// Softmax over classes with cross-entropy against integer labels, averaged over the batch.
///
/// logits `[classes, n]`; labels `[n]`; probabilities and gradient `[classes, n]`.
/// Returns the mean loss and the number of samples whose arg-max is the label.
/// The gradient is `(softmax - onehot) / n`.
public func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, classes: Int, batch n: Int,
                                gradient: UnsafeMutablePointer<Float>?) -> (loss: Double, correct: Int) {
    var loss: Double = 0
    var correct = 0
    for b in 0..<n {
        var maxLogit = -Float.infinity
        var best = 0
        for c in 0..<classes where logits[c * n + b] > maxLogit {
            maxLogit = logits[c * n + b]
            best = c
        }
        var total: Double = 0
        for c in 0..<classes { total += exp(Double(logits[c * n + b] - maxLogit)) }
        let label = Int(labels[b])
        loss += log(total) - Double(logits[label * n + b] - maxLogit)
        if best == label { correct += 1 }
        if let gradient {
            for c in 0..<classes {
                let p = exp(Double(logits[c * n + b] - maxLogit)) / total
                gradient[c * n + b] = Float((p - (c == label ? 1 : 0)) / Double(n))
            }
        }
    }
    return (loss / Double(n), correct)
}

/// Indices of the `k` largest logits of sample `b` in `[classes, n]`, best first.
public func topClasses(logits: UnsafePointer<Float>, classes: Int, batch n: Int, sample b: Int, k: Int) -> [Int] {
    let order = (0..<classes).sorted { logits[$0 * n + b] > logits[$1 * n + b] || (logits[$0 * n + b] == logits[$1 * n + b] && $0 < $1) }
    return Array(order.prefix(k))
}

/// The softmax of sample `b`'s logits, in double precision, from class-major logits `[classes, n]`.
public func softmaxProbabilities(logits: [Float], classes: Int, batch n: Int, sample b: Int) -> [Double] {
    let column = (0..<classes).map { Double(logits[$0 * n + b]) }
    let top = column.max() ?? 0
    let weights = column.map { exp($0 - top) }
    let total = weights.reduce(0, +)
    return weights.map { $0 / total }
}
