import AlexNetCore
import AlexNetData
import Foundation

/// Testing a network that holds every tower in this process on a data set's test split, as
/// training does: for library users and for the tests that check the ten-patch average.
public enum Evaluator {
    /// Loss, top-1 and top-5 over `data`'s test images, through the centre crop or (with
    /// `settings.tenCrop`) the paper's ten patches.
    public static func evaluate(network: Network, data: DataSet, layout: DataLayout, settings: DataSettings,
                                statistics: InputStatistics? = nil, seed: UInt64 = 1) -> Trainer.Evaluation {
        let coordinator = Coordinator(data: data, input: network.plan.spec.input, layout: layout, settings: settings, seed: seed,
                                      restored: statistics)
        return Trainer.evaluate(network: network, coordinator: coordinator, count: data.test.count, broadcast: { _ in true },
                                seed: seed, tenCrop: settings.tenCrop)!
    }

    /// The softmax of every test image through test view `view` alone (0: the centre crop,
    /// 1...9 the other patches), as `[image][class]`.
    public static func probabilities(network: Network, data: DataSet, layout: DataLayout, settings: DataSettings,
                                     statistics: InputStatistics? = nil, view: Int, seed: UInt64 = 1) -> [[Double]] {
        let coordinator = Coordinator(data: data, input: network.plan.spec.input, layout: layout, settings: settings, seed: seed,
                                      restored: statistics)
        let classes = network.plan.classes
        var result: [[Double]] = []
        for first in stride(from: 0, to: data.test.count, by: network.maxBatch) {
            let n = min(network.maxBatch, data.test.count - first)
            coordinator.assembleTest(first..<(first + n), view: view, into: network)
            network.forward(batch: n, context: StepContext(training: false, step: 0, seed: seed))
            let logits = network.logitValues(batch: n)
            for b in 0..<n {
                let column = (0..<classes).map { Double(logits[$0 * n + b]) }
                let top = column.max() ?? 0
                let weights = column.map { exp($0 - top) }
                let total = weights.reduce(0, +)
                result.append(weights.map { $0 / total })
            }
        }
        return result
    }
}
