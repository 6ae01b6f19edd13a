/// Where the towers meet: concatenates every rank's channels (or features) into the whole
/// input of a cross-connected layer, DESIGN.md §4.
///
/// input `[C_local, n, ...]` on each rank -> output `[C_local * ranks, n, ...]`, rank-major,
/// which is the tower order. Backward depends on who consumes the gathered tensor:
/// - `.sum`: a layer whose kernels are split over the ranks; each rank's input gradient is only
///   its own kernels' share, so the shares are summed and each rank keeps its block
///   (reduce-scatter).
/// - `.slice`: the loss, computed identically on every rank; each rank keeps its block.
public final class CrossTowerGather: Stage {
    public enum Backward: Sendable { case sum, slice }
    public let layerName: String
    public let localShape: Shape
    public let backwardMode: Backward
    private let communicator: Communicator

    public init(layerName: String, localShape: Shape, backward: Backward, communicator: Communicator) {
        self.layerName = layerName
        self.localShape = localShape
        backwardMode = backward
        self.communicator = communicator
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        communicator.allGather(input, count: localShape.size * n, into: output)
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        let count = localShape.size * n
        switch backwardMode {
        case .sum:
            guard let dx else { preconditionFailure("a cross-tower gather is never a network's first stage") }
            communicator.reduceScatterSum(dy, count: count, into: dx)
        case .slice:
            dx?.update(from: dy + communicator.rank * count, count: count)
        }
    }
}
