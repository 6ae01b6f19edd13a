import AlexNetComm
import AlexNetCore
import Foundation

/// One rank's part of a model: the stages it runs, their activations, and its tower's weights.
///
/// With a communicator of size R and a model of T towers, the rank holds towers
/// `rank*T/R ..< (rank+1)*T/R` as groups. Two ranks of the split model hold one tower each;
/// one process holding both towers is the grouped-convolution reference of docs/architecture.md ("The equivalences the tests hold").
public final class Network {
    public let plan: NetworkPlan
    public let stagePlans: [StagePlan]
    public let stages: [Stage]
    public let communicator: Communicator
    public let maxBatch: Int
    /// The batch of the last forward pass: the first stage's input, which backward reads again.
    private var lastBatch: Batch?
    let outputs: [Buffer]
    let gradients: [Buffer]
    /// Every trainable tensor of this rank, in stage order: views into `arena`.
    public let parameters: [Parameter]
    /// The values, gradients and momenta of `parameters`, one block each.
    public let arena: ParameterArena
    /// Time spent in each stage, for `bench`.
    public let times: StageTimes
    /// Called with a stage's index after its backward pass, which has then finished that
    /// stage's weight gradients: where the replicas' gradient sum starts a bucket and makes
    /// progress (`BucketedGradientSum.stageFinished`).
    public var afterStageBackward: ((Int) -> Void)?

    /// Towers held by this rank.
    public var towersHere: Int { plan.towers / communicator.size }
    public var firstTower: Int { communicator.rank * towersHere }

    public init(plan: NetworkPlan, communicator: Communicator, maxBatch: Int, seed: UInt64,
                initialization: Initialization? = nil) throws {
        self.plan = plan
        self.communicator = communicator
        self.maxBatch = maxBatch
        stagePlans = try plan.stages(ranks: communicator.size, rank: communicator.rank)
        let scratch = Scratch()
        let groups = plan.towers / communicator.size
        let firstTower = communicator.rank * groups
        stages = stagePlans.map { stage in
            switch stage.op {
            case let .convolution(kernel, stride, padding, g):
                return Convolution(layerName: stage.layer, input: stage.input, outputs: stage.output.channels, kernel: kernel,
                                   stride: stride, padding: padding, groups: g, maxBatch: maxBatch, scratch: scratch)
            case let .linear(g):
                return Linear(layerName: stage.layer, inputs: stage.input.channels, outputs: stage.output.channels, groups: g)
            case .relu:
                return ReLU(layerName: stage.layer, shape: stage.output)
            case let .lrn(g):
                let s = plan.spec.lrn
                return LocalResponseNorm(layerName: stage.layer, shape: stage.output, size: s.size, alpha: s.alpha,
                                         beta: s.beta, k: s.k, groups: g, maxBatch: maxBatch)
            case let .maxPool(size, stride):
                return MaxPool(layerName: stage.layer, input: stage.input, size: size, stride: stride, maxBatch: maxBatch)
            case let .dropout(rate, g):
                return Dropout(layerName: stage.layer, layerIndex: stage.layerIndex, features: stage.output.size, rate: rate,
                               groups: g, firstTower: firstTower, maxBatch: maxBatch)
            case .flatten:
                return Flatten(layerName: stage.layer, input: stage.input)
            case let .gather(mode):
                return CrossTowerGather(layerName: stage.layer, localShape: stage.input, rankChannels: stage.rankChannels,
                                        backward: mode, communicator: communicator)
            }
        }
        outputs = stagePlans.map { Buffer(count: $0.output.size * maxBatch) }
        gradients = stagePlans.map { Buffer(count: $0.output.size * maxBatch) }
        arena = ParameterArena(stages.flatMap(\.parameters))
        parameters = arena.parameters
        times = StageTimes(stages: stages.count)
        initializeWeights(seed: seed, initialization: initialization ?? plan.spec.initialization)
    }

    /// Draws every tower's weights from a generator keyed by (seed, layer, tower), so a tower
    /// starts the same whichever rank or process holds it. Tower t's rows follow tower t-1's,
    /// however many each holds (the class layer's towers may differ by one).
    private func initializeWeights(seed: UInt64, initialization: Initialization) {
        for (stage, stagePlan) in zip(stages, stagePlans) {
            let weight: Parameter, bias: Parameter, receptive: Int
            if let conv = stage as? Convolution {
                (weight, bias, receptive) = (conv.weight, conv.bias, conv.kernel * conv.kernel)
            } else if let linear = stage as? Linear {
                (weight, bias, receptive) = (linear.weight, linear.bias, 1)
            } else { continue }
            let layer = plan.layers[stagePlan.layerIndex]
            let rowLength = weight.shape.dropFirst().reduce(1, *)
            let fanOut = layer.totalOutputs * receptive
            var row = 0
            for tower in firstTower..<(firstTower + towersHere) {
                let rows = layer.towerOutputs[tower]
                var random = KeyedRandom(seed, UInt64(layer.index), UInt64(tower))
                let w = weight.value.pointer + row * rowLength
                let b = bias.value.pointer + row
                row += rows
                switch initialization {
                case .paper:
                    for i in 0..<rows * rowLength { w[i] = Float(0.01 * random.normal()) }
                    for i in 0..<rows { b[i] = layer.spec.paperBias }
                case .xavier:
                    let limit = (6.0 / Double(rowLength + fanOut)).squareRoot()
                    for i in 0..<rows * rowLength { w[i] = Float((2 * random.uniform() - 1) * limit) }
                    for i in 0..<rows { b[i] = 0 }
                }
            }
        }
    }

    /// Logits `[classes, n]` of the last forward pass; every rank holds all of them.
    public var logits: UnsafeMutablePointer<Float> { outputs[outputs.count - 1].pointer }

    /// A copy of the last forward pass's logits, `[classes, n]`. Prefer it to reading `logits`
    /// from outside: a raw pointer does not keep the network alive.
    public func logitValues(batch n: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: logits, count: plan.classes * n))
    }

    /// Called after every stage, forward and backward: where a transfer under way (the next
    /// batch's hand-out) gets the MPI calls that move it while the step computes.
    public var betweenStages: (() -> Void)?

    /// Runs `batch`'s images through every stage.
    public func forward(_ batch: Batch, context: StepContext) {
        let n = batch.count
        precondition(n >= 1 && n <= maxBatch, "batch of \(n) outside 1...\(maxBatch)")
        precondition(batch.shape == plan.spec.input, "a batch of \(batch.shape) images into a \(plan.spec.input) network")
        lastBatch = batch
        var i = 0
        while i < stages.count {
            let x = i == 0 ? UnsafePointer(batch.pixels.pointer) : UnsafePointer(outputs[i - 1].pointer)
            if let (gather, layer) = gatheredInputFirst(at: i) {
                forwardAcross(gather, layer, stage: i, input: x, batch: n)
                i += 2
                continue
            }
            let start = monotonicSeconds()
            stages[i].forward(input: x, output: outputs[i].pointer, batch: n, context: context)
            times.addForward(i, monotonicSeconds() - start)
            betweenStages?()
            i += 1
        }
    }

    /// Whether a cross-connected layer's forward pass starts on this rank's own channels while
    /// the gather brings the others (the default): see `forwardAcross`.
    public var overlapsGathers = true

    /// Stage `i`, a gather of even blocks, and the layer after it, when the overlap is on.
    private func gatheredInputFirst(at i: Int) -> (CrossTowerGather, GatheredInputFirst)? {
        guard overlapsGathers, i + 1 < stages.count, let gather = stages[i] as? CrossTowerGather, gather.gathersEvenly,
              let layer = stages[i + 1] as? GatheredInputFirst else { return nil }
        return (gather, layer)
    }

    /// Stages `i` (the gather) and `i + 1` (the layer): the all-gather started, the layer's part
    /// over this rank's own channels computed from its own activations (with tests of the
    /// transfer between pieces), the wait, then the part over the other ranks' channels.
    private func forwardAcross(_ gather: CrossTowerGather, _ layer: GatheredInputFirst, stage i: Int,
                               input x: UnsafePointer<Float>, batch n: Int) {
        let gathered = outputs[i].pointer, y = outputs[i + 1].pointer, own = gather.ownChannels
        var start = monotonicSeconds()
        gather.startForward(input: x, output: gathered, batch: n)
        times.addForward(i, monotonicSeconds() - start)
        start = monotonicSeconds()
        layer.forwardOwnChannels(localInput: x, channels: own, output: y, batch: n) {
            gather.progressForward()
            betweenStages?()
        }
        times.addForward(i + 1, monotonicSeconds() - start)
        start = monotonicSeconds()
        gather.finishForward()
        times.addForward(i, monotonicSeconds() - start)
        betweenStages?()
        start = monotonicSeconds()
        layer.forwardOtherChannels(input: gathered, channels: own, output: y, batch: n)
        times.addForward(i + 1, monotonicSeconds() - start)
        betweenStages?()
    }

    /// Back-propagates, through the last forward pass, the gradient that the loss left in the
    /// logits' gradient buffer.
    public func backward() {
        guard let batch = lastBatch else { preconditionFailure("backward before any forward pass") }
        let n = batch.count
        for i in stride(from: stages.count - 1, through: 0, by: -1) {
            let x = i == 0 ? UnsafePointer(batch.pixels.pointer) : UnsafePointer(outputs[i - 1].pointer)
            let start = monotonicSeconds()
            if let (layer, gather) = inputGradientFirst(at: i) {
                backwardAcross(layer, gather, stage: i, input: x, batch: n)
            } else {
                stages[i].backward(input: x, output: outputs[i].pointer, outputGradient: gradients[i].pointer,
                                   inputGradient: i == 0 ? nil : gradients[i - 1].pointer, batch: n)
            }
            times.addBackward(i, monotonicSeconds() - start)
            betweenStages?()
            afterStageBackward?(i)
        }
    }

    /// Whether a cross-connected layer's backward pass runs input gradient first, as Megatron-LM
    /// orders it (the default): see `backwardAcross`. The gradients are the same either way, within
    /// rounding where a GEMM weight gradient is cut into row blocks (`weightGradientRowBlocks`).
    public var overlapsInputGradients = true

    /// Stage `i` and the gather before it, when stage `i` is a layer fed by a gather whose
    /// backward pass sums the towers' input gradients, and the overlap is on.
    private func inputGradientFirst(at i: Int) -> (InputGradientFirst, CrossTowerGather)? {
        guard overlapsInputGradients, i >= 2, let layer = stages[i] as? InputGradientFirst,
              let gather = stages[i - 1] as? CrossTowerGather, gather.backwardMode == .sum else { return nil }
        return (layer, gather)
    }

    /// Stage `i`'s backward pass in Megatron-LM's order: its input gradient, then the gather's
    /// reduce-scatter of it started, then the weight gradient while that travels, with a test of
    /// the transfer (and of `betweenStages`' hand-out) between pieces of the work. The gather's
    /// own backward pass, next, waits for the reduce-scatter.
    private func backwardAcross(_ layer: InputGradientFirst, _ gather: CrossTowerGather, stage i: Int,
                                input x: UnsafePointer<Float>, batch n: Int) {
        let dy = UnsafePointer(gradients[i].pointer), dx = gradients[i - 1].pointer
        layer.backwardInput(input: x, outputGradient: dy, inputGradient: dx, batch: n)
        gather.startBackward(outputGradient: dx, inputGradient: gradients[i - 2].pointer, batch: n)
        layer.backwardParameters(input: x, outputGradient: dy, batch: n) {
            gather.progressBackward()
            betweenStages?()
        }
    }

    /// Forward, softmax cross-entropy against the batch's labels, and (when training) backward.
    /// Fills every parameter's gradient; returns the batch's mean loss and correct count.
    @discardableResult
    public func run(_ batch: Batch, context: StepContext) -> (loss: Double, correct: Int) {
        forward(batch, context: context)
        let result = softmaxCrossEntropy(logits: logits, labels: batch.labels, classes: plan.classes, batch: batch.count,
                                         gradient: context.training ? gradients[gradients.count - 1].pointer : nil)
        if context.training { backward() }
        return result
    }

    /// Parameter by name, e.g. `conv3.weight` (this rank's towers only).
    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }
}
