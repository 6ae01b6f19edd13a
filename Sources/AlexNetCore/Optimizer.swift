/// SGD with momentum and weight decay, in the paper's form (§5):
/// `v <- momentum*v - weightDecay*lr*w - lr*grad;  w <- w + v`.
public struct SGD: Sendable {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float

    public init(learningRate: Float = 0.01, momentum: Float = 0.9, weightDecay: Float = 0.0005) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    /// Updates every parameter from its gradient.
    public func update(_ parameters: [Parameter]) {
        let decay = weightDecay * learningRate
        for p in parameters {
            let w = p.value.pointer, g = p.gradient.pointer, v = p.momentum.pointer
            for i in 0..<p.count {
                v[i] = momentum * v[i] - decay * w[i] - learningRate * g[i]
                w[i] += v[i]
            }
        }
    }
}
