/// Max pooling (the paper's overlapping 3/2 by default), no padding.
///
/// input `[C, n, H, W]` -> output `[C, n, Ho, Wo]`; keeps the index of each window's maximum
/// (the first one on ties) for the backward pass.
public final class MaxPool: Stage {
    public let layerName: String
    public let inputShape: Shape
    public let outputShape: Shape
    public let size: Int
    public let stride: Int
    private let argmax: UnsafeMutablePointer<Int32>
    private let capacity: Int

    public init(layerName: String, input: Shape, size: Int = 3, stride: Int = 2, maxBatch: Int) {
        self.layerName = layerName
        inputShape = input
        self.size = size
        self.stride = stride
        outputShape = Shape(channels: input.channels,
                            height: convolutionOutputSize(input: input.height, kernel: size, stride: stride, padding: 0),
                            width: convolutionOutputSize(input: input.width, kernel: size, stride: stride, padding: 0))
        capacity = outputShape.size * maxBatch
        argmax = .allocate(capacity: max(capacity, 1))
        argmax.initialize(repeating: 0, count: max(capacity, 1))
    }

    deinit { argmax.deallocate() }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        let (h, w, oh, ow) = (inputShape.height, inputShape.width, outputShape.height, outputShape.width)
        for plane in 0..<inputShape.channels * n {
            let x = input + plane * h * w
            let y = output + plane * oh * ow
            let index = argmax + plane * oh * ow
            for i in 0..<oh {
                for j in 0..<ow {
                    var best = (i * stride) * w + j * stride
                    var value = x[best]
                    for di in 0..<size {
                        let row = (i * stride + di) * w + j * stride
                        for dj in 0..<size where x[row + dj] > value {
                            value = x[row + dj]
                            best = row + dj
                        }
                    }
                    y[i * ow + j] = value
                    index[i * ow + j] = Int32(best)
                }
            }
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { return }
        let inPlane = inputShape.planeSize, outPlane = outputShape.planeSize
        dx.update(repeating: 0, count: inputShape.size * n)
        for plane in 0..<inputShape.channels * n {
            let d = dx + plane * inPlane
            let index = argmax + plane * outPlane
            let g = dy + plane * outPlane
            for o in 0..<outPlane { d[Int(index[o])] += g[o] }
        }
    }
}
