import AlexNetComm
import AlexNetCore
import AlexNetData
import AlexNetSplit
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
        let batch = Batch(shape: network.plan.spec.input, capacity: network.maxBatch)
        return Trainer.evaluate(network: network, batch: batch, coordinator: coordinator, count: data.test.count,
                                transport: RankContext.pairTransport(SingleProcessCommunicator(), network: network, coordinator: coordinator,
                                                                     layout: layout),
                                seed: seed, tenCrop: settings.tenCrop)!
    }

    /// The softmax of every test image through test view `view` alone (0: the centre crop,
    /// 1...9 the other patches), as `[image][class]`.
    public static func probabilities(network: Network, data: DataSet, layout: DataLayout, settings: DataSettings,
                                     statistics: InputStatistics? = nil, view: Int, seed: UInt64 = 1) -> [[Double]] {
        let coordinator = Coordinator(data: data, input: network.plan.spec.input, layout: layout, settings: settings, seed: seed,
                                      restored: statistics)
        let classes = network.plan.classes
        let batch = Batch(shape: network.plan.spec.input, capacity: network.maxBatch)
        var result: [[Double]] = []
        for first in stride(from: 0, to: data.test.count, by: network.maxBatch) {
            let n = min(network.maxBatch, data.test.count - first)
            coordinator.assembleTest(first..<(first + n), view: view, into: batch)
            network.forward(batch, context: StepContext(training: false, step: 0, seed: seed))
            let logits = network.logitValues(batch: n)
            for b in 0..<n { result.append(softmaxProbabilities(logits: logits, classes: classes, batch: n, sample: b)) }
        }
        return result
    }
}
