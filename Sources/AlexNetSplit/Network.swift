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
    /// The hybrid layout's place and communicators (nil in the data layout).
    public let hybrid: HybridGroup?
    /// The most images a whole-batch stage computes on: `maxBatch` times the replicas (hybrid).
    public let wholeMaxBatch: Int

    /// With `hybrid`, the rank of the hybrid layout (HybridPlan.swift): `communicator` is its
    /// pair, `maxBatch` its replica's most images, and the fully-connected stages hold its slice
    /// of the units for the whole batch.
    public init(plan: NetworkPlan, communicator: Communicator, maxBatch: Int, seed: UInt64,
                initialization: Initialization? = nil, hybrid: HybridGroup? = nil) throws {
        self.plan = plan
        self.communicator = communicator
        self.maxBatch = maxBatch
        self.hybrid = hybrid
        wholeMaxBatch = maxBatch * (hybrid?.position.replicas ?? 1)
        stagePlans = try hybrid.map { try plan.hybridStages(at: $0.position) }
            ?? plan.stages(ranks: communicator.size, rank: communicator.rank)
        stages = Self.makeStages(stagePlans, plan: plan, communicator: communicator, maxBatch: maxBatch, hybrid: hybrid)
        outputs = stagePlans.map { [wholeMaxBatch] in Buffer(count: $0.output.size * ($0.wholeBatch ? wholeMaxBatch : maxBatch)) }
        gradients = stagePlans.map { [wholeMaxBatch] in Buffer(count: $0.output.size * ($0.wholeBatch ? wholeMaxBatch : maxBatch)) }
        arena = ParameterArena(stages.flatMap(\.parameters))
        parameters = arena.parameters
        times = StageTimes(stages: stages.count)
        initializeWeights(seed: seed, initialization: initialization ?? plan.spec.initialization)
    }

    /// The layer objects of `plans`, every parameter still unplaced (the arena places them).
    private static func makeStages(_ stagePlans: [StagePlan], plan: NetworkPlan, communicator: Communicator, maxBatch: Int,
                                   hybrid: HybridGroup?) -> [Stage] {
        let scratch = Scratch()
        let groups = plan.towers / communicator.size
        let firstTower = communicator.rank * groups
        let replicas = hybrid?.position.replicas ?? 1
        return stagePlans.map { stage in
            let batch = stage.wholeBatch ? maxBatch * replicas : maxBatch
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
                               groups: g, firstTower: firstTower, firstUnit: stage.firstUnit, maxBatch: batch)
            case .flatten:
                return Flatten(layerName: stage.layer, input: stage.input)
            case let .gather(mode) where stage.acrossRanks:
                return HybridGather(layerName: stage.layer, blocks: .slices(stage.rankChannels), backward: mode,
                                    communicator: hybrid!.slices, maxShare: maxBatch, replicas: replicas)
            case let .gather(mode):
                return CrossTowerGather(layerName: stage.layer, localShape: stage.input, rankChannels: stage.rankChannels,
                                        backward: mode, communicator: communicator)
            case .gatherImages:
                return HybridGather(layerName: stage.layer, blocks: .images(towerFeatures: stage.rankChannels, replicas: replicas),
                                    backward: .sum, communicator: hybrid!.slices, maxShare: maxBatch, replicas: replicas)
            }
        }
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
                // A hybrid slice holds rows firstUnit ..< firstUnit + its units of its tower's.
                let rows = stagePlan.wholeBatch ? stagePlan.output.channels : layer.towerOutputs[tower]
                var random = KeyedRandom(seed, UInt64(layer.index), UInt64(tower))
                random.skip(stagePlan.firstUnit * rowLength * (initialization == .paper ? 2 : 1))  // normal() draws twice
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
    ///
    /// In the hybrid layout `context.replicaShares` gives every replica's images: the stages up
    /// to the image gather run on this replica's `batch` (not at all when it has none), the rest on
    /// the whole batch.
    public func forward(_ batch: Batch, context: StepContext) {
        let n = batch.count, whole = wholeBatch(batch, context)
        precondition(n >= (hybrid == nil ? 1 : 0) && n <= maxBatch, "batch of \(n) outside 1...\(maxBatch)")
        precondition(whole >= 1 && whole <= wholeMaxBatch, "a whole batch of \(whole) outside 1...\(wholeMaxBatch)")
        precondition(batch.shape == plan.spec.input, "a batch of \(batch.shape) images into a \(plan.spec.input) network")
        lastBatch = batch
        lastWhole = whole
        var wholeContext = context
        (wholeContext.sampleOffset, wholeContext.globalBatch) = (0, whole)
        var i = 0
        while i < stages.count {
            let x = i == 0 ? UnsafePointer(batch.pixels.pointer) : UnsafePointer(outputs[i - 1].pointer)
            let count = stagePlans[i].wholeBatch ? whole : n
            if count == 0 {  // this replica has no images in the step: its own stages rest
                i += 1
                continue
            }
            if let gather = stages[i] as? HybridGather { gather.shares = context.replicaShares! }
            if let (gather, layer) = gatheredInputFirst(at: i) {
                forwardAcross(gather, layer, stage: i, input: x, batch: n)
                i += 2
                continue
            }
            let start = monotonicSeconds()
            stages[i].forward(input: x, output: outputs[i].pointer, batch: count, context: stagePlans[i].wholeBatch ? wholeContext : context)
            times.addForward(i, monotonicSeconds() - start)
            betweenStages?()
            i += 1
        }
    }

    /// Images the whole-batch stages compute on: every replica's in the hybrid layout, else the batch's.
    private func wholeBatch(_ batch: Batch, _ context: StepContext) -> Int {
        guard let hybrid else { return batch.count }
        guard let shares = context.replicaShares, shares.count == hybrid.position.replicas,
              shares[hybrid.position.replica] == batch.count else {
            preconditionFailure("the hybrid layout needs every replica's images, this one's \(batch.count) among them")
        }
        return shares.reduce(0, +)
    }

    /// Images of the last forward pass's whole-batch stages (the logits' columns).
    public private(set) var lastWhole = 0

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
            let count = stagePlans[i].wholeBatch ? lastWhole : n
            if count == 0 {
                for p in stages[i].parameters { p.gradient.zero() }  // no images: this replica adds nothing
            } else if let (layer, gather) = inputGradientFirst(at: i) {
                backwardAcross(layer, gather, stage: i, input: x, batch: n)
            } else {
                stages[i].backward(input: x, output: outputs[i].pointer, outputGradient: gradients[i].pointer,
                                   inputGradient: i == 0 ? nil : gradients[i - 1].pointer, batch: count)
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
        func loss(_ labels: UnsafePointer<Int32>) -> (loss: Double, correct: Int) {
            softmaxCrossEntropy(logits: logits, labels: labels, classes: plan.classes, batch: lastWhole,
                                gradient: context.training ? gradients[gradients.count - 1].pointer : nil)
        }
        let result = hybrid.map { h in
            gatherLabels(batch, shares: context.replicaShares!, world: h.world).withUnsafeBufferPointer { loss($0.baseAddress!) }
        } ?? loss(batch.labels)
        if context.training { backward() }
        return result
    }

    /// The hybrid layout: the labels of the whole batch, in replica order, from the tower-0
    /// rank of each replica (world rank 2r; as floats, exact below 2^24), on every rank.
    private func gatherLabels(_ batch: Batch, shares: [Int], world: Communicator) -> [Int32] {
        let towers = plan.towers, whole = shares.reduce(0, +)
        for b in 0..<batch.count { labelFloats.pointer[wholeMaxBatch + b] = Float(batch.labels[b]) }
        let counts = (0..<world.size).map { $0 % towers == 0 ? shares[$0 / towers] : 0 }
        world.allGather(labelFloats.pointer + wholeMaxBatch, counts: counts, into: labelFloats.pointer)
        return (0..<whole).map { Int32(labelFloats.pointer[$0]) }
    }

    /// The gathered labels as floats: the whole batch's, then this replica's to send.
    private lazy var labelFloats = Buffer(count: 2 * wholeMaxBatch)

    /// The hybrid layout: where a fully-connected tensor's rows (its units) sit among its tower's
    /// `of` rows; nil for a tensor this rank holds whole.
    public func towerRows(of parameter: Parameter) -> (first: Int, of: Int)? {
        guard let hybrid, let i = stages.firstIndex(where: { $0.parameters.contains { $0 === parameter } }), stagePlans[i].wholeBatch else {
            return nil
        }
        let layer = plan.layers[stagePlans[i].layerIndex]
        return (stagePlans[i].firstUnit, layer.towerOutputs[hybrid.position.tower])
    }

    /// The context of a test batch of `images` images: in the hybrid layout replica 0 holds them
    /// all (the other replicas' ranks compute their slices of the fully-connected layers on them).
    public func testContext(images: Int, seed: UInt64) -> StepContext {
        let shares = hybrid.map { [images] + Array(repeating: 0, count: $0.position.replicas - 1) }
        return StepContext(training: false, step: 0, seed: seed, replicaShares: shares)
    }

    /// Parameter by name, e.g. `conv3.weight` (this rank's towers only).
    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }
}
