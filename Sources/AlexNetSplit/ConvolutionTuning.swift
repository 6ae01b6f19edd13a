import AlexNetCore
import CBLAS
import Foundation

/// `auto`: the fastest algorithms per layer, found by timing each candidate once on this
/// machine (as cuDNN's benchmark mode does).
extension Network {
    /// Times the algorithms each convolution supports on a batch of `batch` images (its own
    /// activation buffers filled with arbitrary values: no weight or momentum changes, and the
    /// gradients it leaves are overwritten by the next backward pass) and returns the fastest.
    /// Each candidate runs twice and keeps its better time: the first run also touches its
    /// buffers, and the machine may be shared. Without `training`, only the forward pass is
    /// timed and the gradients stay on its algorithm. Leaves the network on the plan it had.
    ///
    /// In training, a candidate is a forward algorithm with a backward one (both gradients),
    /// timed as a whole step: the passes share work (a Winograd weight gradient after a Winograd
    /// forward pass of the same tile reuses its transformed input, the GEMM weight gradient
    /// reuses the forward pass's columns, the two Winograd gradients share the transformed output
    /// gradient), so timing each pass alone, as this did before, charged a weight gradient
    /// less than it costs after another forward algorithm, and chose such mixes.
    public func tuneConvolutions(batch: Int, training: Bool = true) -> ConvolutionPlan {
        let n = min(max(batch, 1), maxBatch), previous = convolutionPlan
        // The first stage reads the batch, which the network does not own: time it on a stand-in.
        let image = Buffer(count: (stagePlans.first?.input.size ?? 0) * n)
        var layers: [ConvolutionPlan.Entry] = []
        for (i, stage) in stages.enumerated() {
            guard let conv = stage as? Convolution else { continue }
            let candidates = ConvolutionAlgorithm.allCases.filter(conv.supports)
            let choices = training
                ? candidates.flatMap { forward in
                    candidates.map { ConvolutionAlgorithms(forward: forward, inputGradient: $0, weightGradient: $0) }
                }
                : candidates.map { ConvolutionAlgorithms($0) }
            let times = choices.map { timeStep(of: conv, stage: i, algorithms: $0, batch: n, training: training, image: image) }
            layers.append(.init(layer: conv.layerName, algorithms: choices[times.indices.min { times[$0] < times[$1] }!]))
        }
        try? use(previous)
        return ConvolutionPlan(layers: layers)
    }

    /// Seconds of a forward pass and (in `training`) the backward pass after it, the better of two.
    /// When OpenBLAS computes on this thread alone (one BLAS thread, as under `mpirun` and in
    /// simulation), this thread's CPU time: on a shared machine another process's turn on the
    /// core would otherwise count against whichever candidate it fell on, and `auto` chose
    /// differently from run to run. With several BLAS threads the work is spread over them, so
    /// wall time.
    private func timeStep(of conv: Convolution, stage i: Int, algorithms: ConvolutionAlgorithms,
                          batch n: Int, training: Bool, image: Buffer) -> Double {
        conv.use(algorithms)
        let x = i == 0 ? image.pointer : outputs[i - 1].pointer, y = outputs[i].pointer, dy = gradients[i].pointer
        // The first stage computes no input gradient.
        let dx = i == 0 ? nil : gradients[i - 1].pointer
        fillArbitrary(x, count: stagePlans[i].input.size * n)
        fillArbitrary(dy, count: stagePlans[i].output.size * n)
        let context = StepContext(training: true, step: 0, seed: 0)
        let clock = openblas_get_num_threads() == 1 ? threadCPUSeconds : monotonicSeconds
        var best = Double.infinity
        for _ in 0..<2 {
            let start = clock()
            conv.forward(input: x, output: y, batch: n, context: context)
            if training { conv.backward(input: x, output: y, outputGradient: dy, inputGradient: dx, batch: n) }
            best = min(best, clock() - start)
        }
        return best
    }

    private func fillArbitrary(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { pointer[i] = Float((i &* 7919) % 201 - 100) * 0.01 }
    }
}

/// CPU seconds this thread has run.
private func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

extension Network {
    /// This rank's convolution stages, in order.
    public var convolutions: [Convolution] { stages.compactMap { $0 as? Convolution } }

    /// The algorithms the convolutions use now.
    public var convolutionPlan: ConvolutionPlan {
        ConvolutionPlan(layers: convolutions.map { .init(layer: $0.layerName, algorithms: $0.algorithms) })
    }

    /// Switches every convolution to `plan`; throws if it names other layers or an algorithm a
    /// layer cannot run (a checkpoint of another model, say).
    public func use(_ plan: ConvolutionPlan) throws {
        let convs = convolutions
        guard plan.layers.map(\.layer) == convs.map(\.layerName) else {
            throw PlanError("the convolution algorithms name layers \(plan.layers.map(\.layer)) but this model has \(convs.map(\.layerName))")
        }
        for (conv, entry) in zip(convs, plan.layers) {
            guard let bad = entry.algorithms.all.first(where: { !conv.supports($0) }) else { continue }
            throw PlanError("\(conv.layerName) cannot run \(bad.rawValue) (it has stride \(conv.stride) and a \(conv.kernel)x\(conv.kernel) kernel)")
        }
        for (conv, entry) in zip(convs, plan.layers) { conv.use(entry.algorithms) }
    }

    /// The plan a fixed request means here (for `auto`, see `tuneConvolutions`).
    public func fixedPlan(_ request: ConvolutionAlgorithmRequest) -> ConvolutionPlan {
        let wanted: ConvolutionAlgorithm = switch request {
        case .gemm, .auto: .gemm
        case .winograd: .winograd2x2
        case .winograd4x4: .winograd4x4
        }
        return ConvolutionPlan(layers: convolutions.map { conv in
            .init(layer: conv.layerName, algorithms: ConvolutionAlgorithms(conv.supports(wanted) ? wanted : .gemm))
        })
    }
}
