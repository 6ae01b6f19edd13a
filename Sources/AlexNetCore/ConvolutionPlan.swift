/// What the user asks of the convolutions (`--conv-algorithm`).
public enum ConvolutionAlgorithmRequest: String, CaseIterable, Sendable, Codable {
    /// Time every candidate on each layer and pass once at start-up; take the fastest.
    case auto
    /// im2col + GEMM everywhere (the reference).
    case gemm
    /// F(2x2, k x k) on every stride-1 layer, GEMM elsewhere.
    case winograd
    /// F(4x4, k x k) on every stride-1 layer that allows it, GEMM elsewhere.
    case winograd4x4 = "winograd-4x4"

    /// The Winograd output tiles this request may build (what the memory estimate counts).
    public var winogradTiles: [Int] {
        switch self {
        case .auto: [2, 4]
        case .gemm: []
        case .winograd: [2]
        case .winograd4x4: [4]
        }
    }
}

/// The algorithms of every convolution of a network, by layer, in stage order: data that a
/// checkpoint stores and that rank 0 hands to the others.
public struct ConvolutionPlan: Equatable, Sendable, Codable {
    public struct Entry: Equatable, Sendable, Codable {
        public var layer: String
        public var algorithms: ConvolutionAlgorithms

        public init(layer: String, algorithms: ConvolutionAlgorithms) {
            self.layer = layer
            self.algorithms = algorithms
        }
    }
    public var layers: [Entry]

    public init(layers: [Entry]) { self.layers = layers }

    /// One line per layer, e.g. `conv3: forward winograd-2x2, input gradient winograd-2x2, weight gradient gemm`.
    public var description: String {
        layers.map { e in
            "\(e.layer): forward \(e.algorithms.forward.rawValue), input gradient \(e.algorithms.inputGradient.rawValue), weight gradient \(e.algorithms.weightGradient.rawValue)"
        }.joined(separator: "\n")
    }

    /// Three codes per layer (indices into `ConvolutionAlgorithm.allCases`), for a broadcast.
    public var codes: [Int] {
        layers.flatMap { $0.algorithms.all.map { ConvolutionAlgorithm.allCases.firstIndex(of: $0)! } }
    }

    /// The plan with its algorithms replaced by `codes` (as `codes` made them), or nil when they do not fit.
    public func replacing(codes: [Int]) -> ConvolutionPlan? {
        let cases = ConvolutionAlgorithm.allCases
        guard codes.count == 3 * layers.count, codes.allSatisfy({ cases.indices.contains($0) }) else { return nil }
        var plan = self
        for i in plan.layers.indices {
            plan.layers[i].algorithms = ConvolutionAlgorithms(forward: cases[codes[3 * i]], inputGradient: cases[codes[3 * i + 1]],
                                                              weightGradient: cases[codes[3 * i + 2]])
        }
        return plan
    }
}
