import AlexNetCore
import Foundation
import XCTest

/// The layers' fast paths against plain formulas computed in Double.
final class FastPathTests: XCTestCase {
    /// The LRN of `[C, count]` in Double, straight from the paper's formula, and its exact gradient.
    struct PlainLRN {
        var channels: Int, groups: Int, size: Int
        var alpha: Double, beta: Double, k: Double

        func window(_ c: Int) -> ClosedRange<Int> {
            let perGroup = channels / groups, first = c / perGroup * perGroup
            return max(first, c - size / 2)...min(first + perGroup - 1, c + size / 2)
        }

        func scale(_ a: [Float], _ c: Int, _ p: Int, count: Int) -> Double {
            k + alpha * window(c).reduce(0) { $0 + Double(a[$1 * count + p]) * Double(a[$1 * count + p]) }
        }

        func forward(_ a: [Float], count: Int) -> [Double] {
            (0..<channels * count).map { i in Double(a[i]) * pow(scale(a, i / count, i % count, count: count), -beta) }
        }

        /// dx_j = dy_j s_j^-beta - 2 alpha beta a_j sum_{i : j in window(i)} dy_i a_i s_i^(-beta-1).
        func backward(_ a: [Float], _ dy: [Float], count: Int) -> [Double] {
            (0..<channels * count).map { j in
                let (c, p) = (j / count, j % count)
                let spread = window(c).reduce(0.0) { total, i in
                    total + Double(dy[i * count + p]) * Double(a[i * count + p]) * pow(scale(a, i, p, count: count), -beta - 1)
                }
                return Double(dy[j]) * pow(scale(a, c, p, count: count), -beta) - 2 * alpha * beta * Double(a[j]) * spread
            }
        }
    }

    /// Largest absolute error over the largest absolute exact value.
    func normwiseError(_ got: [Float], _ exact: [Double]) -> Double {
        let error = zip(got, exact).map { abs(Double($0) - $1) }.max()!
        return error / exact.map(abs).max()!
    }

    func testLRNMatchesThePlainFormulaInDouble() {
        // 2 tiles of positions and a ragged tail (the vector loop's scalar remainder), windows
        // clipped at group edges; beta 0.75 takes the square-root path, 0.6 the pow path.
        let n = 3
        for (channels, groups, alpha, beta) in [(10, 2, 0.5, 0.75), (10, 1, 1e-4, 0.75), (6, 2, 0.5, 0.6)] as [(Int, Int, Float, Float)] {
            let shape = Shape(channels: channels, height: 83, width: 83), count = n * shape.planeSize
            let lrn = LocalResponseNorm(layerName: "lrn", shape: shape, size: 5, alpha: alpha, beta: beta, k: 2, groups: groups, maxBatch: n)
            let plain = PlainLRN(channels: channels, groups: groups, size: 5, alpha: Double(alpha), beta: Double(beta), k: 2)
            let a = randomValues(channels * count, seed: 21), dy = randomValues(channels * count, seed: 22)
            let x = Buffer(a), y = Buffer(count: a.count), g = Buffer(dy), dx = Buffer(count: a.count)
            lrn.forward(input: x.pointer, output: y.pointer, batch: n, context: StepContext(training: true, step: 0, seed: 0))
            lrn.backward(input: x.pointer, output: y.pointer, outputGradient: g.pointer, inputGradient: dx.pointer, batch: n)
            let exact = plain.forward(a, count: count)
            let relative = zip(y.array, exact).map { abs(Double($0) - $1) / max(abs($1), 1e-30) }.max()!
            let gradient = normwiseError(dx.array, plain.backward(a, dy, count: count))
            print("LRN C=\(channels) groups=\(groups) alpha=\(alpha) beta=\(beta): forward relative error \(relative), input gradient normwise \(gradient)")
            XCTAssertLessThan(relative, 1e-6, "forward, element by element")
            XCTAssertLessThan(gradient, 1e-6, "input gradient, normwise")
        }
    }
}
