/// `auto`: the fastest algorithm per layer and per pass, found by timing each candidate once
/// on this machine (as cuDNN's benchmark mode does).
extension Network {
    /// Times every algorithm each convolution supports on a batch of `batch` images (its own
    /// activation buffers filled with arbitrary values: no weight or momentum changes, and the
    /// gradients it leaves are overwritten by the next backward pass) and returns the fastest per pass. Each candidate runs twice and keeps its
    /// better time: the first run also touches its buffers, and the machine may be shared. The input gradient's time is the backward pass with it
    /// minus the backward pass without it, so a Winograd candidate is charged only for what
    /// the input gradient adds to its weight gradient. Without `training`, only the forward pass
    /// is timed and the gradients stay on its algorithm. Leaves the network on the plan it had.
    public func tuneConvolutions(batch: Int, training: Bool = true) -> ConvolutionPlan {
        let n = min(max(batch, 1), maxBatch), previous = convolutionPlan
        // The first stage reads the batch, which the network does not own: time it on a stand-in.
        let image = Buffer(count: (stagePlans.first?.input.size ?? 0) * n)
        var layers: [ConvolutionPlan.Entry] = []
        for (i, stage) in stages.enumerated() {
            guard let conv = stage as? Convolution else { continue }
            let candidates = ConvolutionAlgorithm.allCases.filter(conv.supports)
            let times = candidates.map { timePasses(of: conv, stage: i, algorithm: $0, batch: n, training: training, image: image) }
            func fastest(_ pass: (PassTimes) -> Double) -> ConvolutionAlgorithm {
                candidates[times.indices.min { pass(times[$0]) < pass(times[$1]) }!]
            }
            let forward = fastest { $0.forward }
            let weight = training ? fastest { $0.weight } : forward
            // The first stage computes no input gradient: keep it on the weight gradient's engine.
            let input = i == 0 || !training ? weight : fastest { $0.input }
            layers.append(.init(layer: conv.layerName, algorithms: ConvolutionAlgorithms(forward: forward, inputGradient: input,
                                                                                          weightGradient: weight)))
        }
        try? use(previous)
        return ConvolutionPlan(layers: layers)
    }

    /// Seconds of the forward pass, the weight gradient, and what the input gradient adds.
    private func timePasses(of conv: Convolution, stage i: Int, algorithm: ConvolutionAlgorithm,
                            batch n: Int, training: Bool, image: Buffer) -> PassTimes {
        conv.use(ConvolutionAlgorithms(algorithm))
        let x = i == 0 ? image.pointer : outputs[i - 1].pointer, y = outputs[i].pointer, dy = gradients[i].pointer
        let dx = i == 0 ? nil : gradients[i - 1].pointer
        fillArbitrary(x, count: stagePlans[i].input.size * n)
        fillArbitrary(dy, count: stagePlans[i].output.size * n)
        let context = StepContext(training: true, step: 0, seed: 0)
        func seconds(_ body: () -> Void) -> Double {
            let start = monotonicSeconds()
            body()
            return monotonicSeconds() - start
        }
        var best = PassTimes(forward: .infinity, input: .infinity, weight: .infinity)
        for _ in 0..<2 {
            let forward = seconds { conv.forward(input: x, output: y, batch: n, context: context) }
            guard training else {
                best.forward = min(best.forward, forward)
                continue
            }
            let weight = seconds { conv.backward(input: x, output: y, outputGradient: dy, inputGradient: nil, batch: n) }
            var input = 0.0
            if let dx {
                conv.forward(input: x, output: y, batch: n, context: context)
                input = max(seconds { conv.backward(input: x, output: y, outputGradient: dy, inputGradient: dx, batch: n) } - weight, 0)
            }
            best = PassTimes(forward: min(best.forward, forward), input: min(best.input, input), weight: min(best.weight, weight))
        }
        return best
    }

    private func fillArbitrary(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { pointer[i] = Float((i &* 7919) % 201 - 100) * 0.01 }
    }
}

/// Seconds a candidate took per pass (the input gradient as what it adds to the weight gradient).
struct PassTimes {
    var forward: Double, input: Double, weight: Double
}
