/// What this machine's SGEMM reaches at the shapes of a step computed the direct way (im2col +
/// GEMM for every convolution, GEMM for every fully-connected layer): the ceiling of any method
/// that does all of the direct method's multiplications, against which `bench` sets what it
/// achieved.
public enum SGEMMProbe {
    /// One GEMM shape, `[m, k] x [k, n]`, run `count` times per step.
    public struct GEMM: Equatable, Sendable {
        public var m: Int, n: Int, k: Int, count: Int
        var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(count) }
    }

    /// The GEMMs of one step of this rank's stages: forward, and when training the weight and
    /// input gradients (none for the first stage). Convolutions use `convolutionImages` images
    /// (fewer than the batch keeps the probe short; the GEMMs are as wide as ever for it),
    /// fully-connected layers the whole `batch`, whose width matters to their speed.
    public static func shapes(of stages: [StagePlan], batch: Int, convolutionImages: Int, training: Bool) -> [GEMM] {
        var result: [GEMM] = []
        for (i, stage) in stages.enumerated() {
            let outputsPerGroup: Int, depth: Int, width: Int, groups: Int
            switch stage.op {
            case let .convolution(kernel, _, _, g):
                (outputsPerGroup, depth, width, groups) = (stage.output.channels / g, stage.input.channels / g * kernel * kernel,
                                                           convolutionImages * stage.output.planeSize, g)
            case let .linear(g):
                (outputsPerGroup, depth, width, groups) = (stage.output.channels / g, stage.input.channels / g, batch, g)
            default:
                continue
            }
            result.append(GEMM(m: outputsPerGroup, n: width, k: depth, count: groups))
            guard training else { continue }
            result.append(GEMM(m: outputsPerGroup, n: depth, k: width, count: groups))
            if i > 0 { result.append(GEMM(m: depth, n: width, k: outputsPerGroup, count: groups)) }
        }
        return result
    }

    /// GFLOP/s of running every shape once (each after one untimed run of the same shape, so
    /// that page faults and OpenBLAS's first-call set-up are not counted).
    public static func gflops(_ shapes: [GEMM]) -> Double {
        guard !shapes.isEmpty else { return 0 }
        let a = Buffer(count: shapes.map { $0.m * $0.k }.max()!), b = Buffer(count: shapes.map { $0.k * $0.n }.max()!)
        let c = Buffer(count: shapes.map { $0.m * $0.n }.max()!)
        for buffer in [a, b] { for i in 0..<buffer.count { buffer.pointer[i] = Float(i % 13) * 0.01 } }
        var seconds = 0.0, flops = 0.0
        for shape in shapes {
            gemm(false, false, shape.m, shape.n, shape.k, a.pointer, shape.k, b.pointer, shape.n, 0, c.pointer, shape.n)
            let start = monotonicSeconds()
            for _ in 0..<shape.count {
                gemm(false, false, shape.m, shape.n, shape.k, a.pointer, shape.k, b.pointer, shape.n, 0, c.pointer, shape.n)
            }
            seconds += monotonicSeconds() - start
            flops += shape.flops
        }
        return flops / seconds / 1e9
    }
}
