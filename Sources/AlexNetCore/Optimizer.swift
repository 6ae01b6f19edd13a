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

    /// Updates every value of `arena` from its gradient: one pass over three contiguous
    /// buffers, 16 lanes at a time. Element for element the arithmetic is the scalar formula's
    /// (the same operations in the same order, no fused multiply-add), so the bits are too.
    public func update(_ arena: ParameterArena) {
        let w = arena.values.pointer, g = arena.gradients.pointer, v = arena.momenta.pointer
        let decay = weightDecay * learningRate, n = arena.count
        typealias Lanes = SIMD16<Float>
        var i = 0
        while i + Lanes.scalarCount <= n {
            let wi = UnsafeRawPointer(w + i).loadUnaligned(as: Lanes.self)
            let gi = UnsafeRawPointer(g + i).loadUnaligned(as: Lanes.self)
            let vi = UnsafeRawPointer(v + i).loadUnaligned(as: Lanes.self)
            let velocity = momentum * vi - decay * wi - learningRate * gi
            UnsafeMutableRawPointer(v + i).storeBytes(of: velocity, as: Lanes.self)
            UnsafeMutableRawPointer(w + i).storeBytes(of: wi + velocity, as: Lanes.self)
            i += Lanes.scalarCount
        }
        while i < n {
            v[i] = momentum * v[i] - decay * w[i] - learningRate * g[i]
            w[i] += v[i]
            i += 1
        }
    }
}
