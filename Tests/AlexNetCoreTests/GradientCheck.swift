import AlexNetCore
import XCTest

/// Finite-difference gradient checking for one stage: the loss is `sum(output * probe)` for a
/// fixed random probe, so `probe` is the output gradient, and each checked input or parameter
/// element is nudged by ±epsilon and the loss difference compared with the analytic gradient.
struct GradientChecker {
    var epsilon: Float = 1e-2
    var tolerance: Double = 2e-2
    var context = StepContext(training: true, step: 3, seed: 11)

    /// Checks `stage` on `input` (`inputCount` floats) producing `outputCount` floats per run.
    func check(_ stage: Stage, input: [Float], outputCount: Int, batch n: Int,
               checkInput: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        var random = KeyedRandom(99)
        let probe = (0..<outputCount).map { _ in Float(random.normal()) }
        let x = Buffer(input), y = Buffer(count: outputCount), dy = Buffer(probe), dx = Buffer(count: input.count)

        func loss() -> Double {
            stage.forward(input: x.pointer, output: y.pointer, batch: n, context: context)
            var total = 0.0
            for i in 0..<outputCount { total += Double(y.pointer[i]) * Double(probe[i]) }
            return total
        }
        _ = loss()
        stage.backward(input: x.pointer, output: y.pointer, outputGradient: dy.pointer,
                       inputGradient: checkInput ? dx.pointer : nil, batch: n)
        let analyticInput = dx.array
        let analyticParameters = stage.parameters.map(\.gradient.array)

        func numeric(_ pointer: UnsafeMutablePointer<Float>, _ i: Int) -> Double {
            centralDifference(pointer, i, epsilon: epsilon, loss: loss)
        }
        func compare(_ analytic: Double, _ numeric: Double, _ what: String) {
            let error = abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-2)
            XCTAssertLessThan(error, tolerance, "\(stage.layerName) \(what): analytic \(analytic) vs numeric \(numeric)",
                              file: file, line: line)
        }
        if checkInput {
            for i in sampleIndices(input.count) { compare(Double(analyticInput[i]), numeric(x.pointer, i), "input[\(i)]") }
        }
        for (p, parameter) in stage.parameters.enumerated() {
            for i in sampleIndices(parameter.count) {
                compare(Double(analyticParameters[p][i]), numeric(parameter.value.pointer, i), "\(parameter.name)[\(i)]")
            }
        }
    }

    /// Up to 60 indices spread over `0..<count`, always including both ends.
    private func sampleIndices(_ count: Int) -> [Int] {
        guard count > 60 else { return Array(0..<count) }
        return (0..<60).map { $0 * (count - 1) / 59 }
    }
}

/// (loss(x_i + epsilon) - loss(x_i - epsilon)) / (2 epsilon), leaving x_i as it was.
func centralDifference(_ pointer: UnsafeMutablePointer<Float>, _ i: Int, epsilon: Float, loss: () -> Double) -> Double {
    let saved = pointer[i]
    pointer[i] = saved + epsilon
    let up = loss()
    pointer[i] = saved - epsilon
    let down = loss()
    pointer[i] = saved
    return (up - down) / (2 * Double(epsilon))
}

/// The slopes of the loss just above and just below x_i: (loss(x_i + e) - loss(x_i)) / e and
/// (loss(x_i) - loss(x_i - e)) / e, leaving x_i as it was. They differ when a kink lies between.
func oneSidedDifferences(_ pointer: UnsafeMutablePointer<Float>, _ i: Int, epsilon: Float,
                         loss: () -> Double) -> (forward: Double, backward: Double) {
    let saved = pointer[i]
    let here = loss()
    pointer[i] = saved + epsilon
    let up = loss()
    pointer[i] = saved - epsilon
    let down = loss()
    pointer[i] = saved
    let step = Double(saved + epsilon) - Double(saved)  // the nudge as stored in Float
    return ((up - here) / step, (here - down) / step)
}

/// Random values whose magnitudes stay above `floor`, so that nudges never cross a kink at zero.
func randomValues(_ count: Int, seed: UInt64, floor: Float = 0) -> [Float] {
    var random = KeyedRandom(seed)
    return (0..<count).map { _ in
        let v = Float(random.normal())
        return v >= 0 ? v + floor : v - floor
    }
}

/// Fills a stage's parameters with seeded random values.
func randomize(_ stage: Stage, seed: UInt64, scale: Float = 0.3) {
    for (p, parameter) in stage.parameters.enumerated() {
        let values = randomValues(parameter.count, seed: seed &+ UInt64(p))
        for i in 0..<parameter.count { parameter.value.pointer[i] = values[i] * scale }
    }
}
