/// How a convolution computes one of its passes.
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable, Codable {
    /// im2col (unfold the input's patches into a matrix) and one SGEMM per group.
    case gemm
    /// Winograd F(2x2, k x k): 2x2 output tiles, the most accurate of the fast ones.
    case winograd2x2 = "winograd-2x2"
    /// Winograd F(4x4, k x k): 4x4 output tiles, fewer multiplications, larger rounding error.
    case winograd4x4 = "winograd-4x4"

    /// Output tile side of a Winograd algorithm; nil for GEMM.
    public var outputTile: Int? {
        switch self {
        case .gemm: nil
        case .winograd2x2: 2
        case .winograd4x4: 4
        }
    }
}

/// The algorithm of each of a convolution's three passes.
public struct ConvolutionAlgorithms: Equatable, Sendable, Codable {
    public var forward: ConvolutionAlgorithm
    public var inputGradient: ConvolutionAlgorithm
    public var weightGradient: ConvolutionAlgorithm

    public init(forward: ConvolutionAlgorithm, inputGradient: ConvolutionAlgorithm, weightGradient: ConvolutionAlgorithm) {
        self.forward = forward
        self.inputGradient = inputGradient
        self.weightGradient = weightGradient
    }

    /// The same algorithm for every pass.
    public init(_ all: ConvolutionAlgorithm) { self.init(forward: all, inputGradient: all, weightGradient: all) }

    public static let gemm = ConvolutionAlgorithms(.gemm)

    public var all: [ConvolutionAlgorithm] { [forward, inputGradient, weightGradient] }

    /// `forward/input-gradient/weight-gradient`, e.g. `winograd-2x2/winograd-2x2/gemm`.
    public var text: String { all.map(\.rawValue).joined(separator: "/") }
}
