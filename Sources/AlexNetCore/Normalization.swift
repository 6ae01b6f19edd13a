import Foundation

/// Local response normalisation across channels, with the paper's formula (§3.3):
/// `b_c = a_c / (k + alpha * sum_{c' in window(c)} a_{c'}^2)^beta`, a window of `size`
/// channels centred on `c`.
///
/// alpha is not divided by the window size (PyTorch and Caffe do divide). The window never
/// leaves its group of `channels/groups` channels: a tower's LRN sees only its own kernels,
/// as cuda-convnet's `rnorm1` with `channels=48`.
/// input `[C, n, H, W]` -> output of the same shape.
public final class LocalResponseNorm: Stage {
    public let layerName: String
    public let shape: Shape
    public let size: Int
    public let alpha: Float
    public let beta: Float
    public let k: Float
    public let groups: Int
    /// The denominator's base `k + alpha * sum a^2`, kept for backward.
    private let scale: Buffer
    /// Backward workspace: `dy * y / scale` per element.
    private let ratio: Buffer

    public init(layerName: String, shape: Shape, size: Int, alpha: Float, beta: Float, k: Float, groups: Int, maxBatch: Int) {
        precondition(shape.channels % groups == 0, "channels must divide into groups")
        self.layerName = layerName
        self.shape = shape
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.groups = groups
        scale = Buffer(count: shape.size * maxBatch)
        ratio = Buffer(count: shape.size * maxBatch)
    }

    /// Channels in the window of channel `c`, clamped to `c`'s group.
    @inline(__always)
    private func window(_ c: Int) -> ClosedRange<Int> {
        let perGroup = shape.channels / groups
        let first = c / perGroup * perGroup
        return max(first, c - size / 2)...min(first + perGroup - 1, c + size / 2)
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let plane = shape.planeSize * n
        for c in 0..<shape.channels {
            let s = scale.pointer + c * plane
            s.update(repeating: 0, count: plane)
            for other in window(c) {
                let a = input + other * plane
                for i in 0..<plane { s[i] += a[i] * a[i] }
            }
            let a = input + c * plane, y = output + c * plane
            for i in 0..<plane {
                s[i] = k + alpha * s[i]
                y[i] = a[i] * powf(s[i], -beta)
            }
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        let plane = shape.planeSize * n
        let total = shape.channels * plane
        for i in 0..<total { ratio.pointer[i] = dy[i] * output[i] / scale.pointer[i] }
        // dx_j = dy_j s_j^-beta - 2 alpha beta a_j sum_{i : j in window(i)} dy_i y_i / s_i,
        // and j is in window(i) exactly when i is in window(j).
        let factor = 2 * alpha * beta
        for c in 0..<shape.channels {
            let d = dx + c * plane, a = input + c * plane, s = scale.pointer + c * plane, g = dy + c * plane
            for i in 0..<plane { d[i] = 0 }
            for other in window(c) {
                let r = ratio.pointer + other * plane
                for i in 0..<plane { d[i] += r[i] }
            }
            for i in 0..<plane { d[i] = g[i] * powf(s[i], -beta) - factor * a[i] * d[i] }
        }
    }
}
