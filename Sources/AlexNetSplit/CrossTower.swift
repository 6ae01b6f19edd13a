import AlexNetComm
import AlexNetCore

/// Where the towers meet: concatenates every rank's channels (or features) into the whole
/// input of a cross-connected layer, or into the logits (docs/models.md).
///
/// input `[C_rank, n, ...]` on each rank -> output `[sum of C_r, n, ...]`, rank-major, which is
/// the tower order. Every rank holds the same number of channels, except at the logits when the
/// classes do not split evenly over the towers (5 classes: 3 on rank 0, 2 on rank 1); then the
/// all-gather takes per-rank counts (MPI_Allgatherv). Backward depends on who consumes the
/// gathered tensor:
/// - `.sum`: a layer whose kernels are split over the ranks; each rank's input gradient is only
///   its own kernels' share, so the shares are summed and each rank keeps its block
///   (reduce-scatter). Its blocks are always equal.
/// - `.slice`: the loss, computed identically on every rank; each rank keeps its block.
public final class CrossTowerGather: Stage {
    public typealias Backward = GatherBackward
    public let layerName: String
    public let localShape: Shape
    /// Channels of every rank, in rank order.
    public let rankChannels: [Int]
    public let backwardMode: Backward
    private let communicator: Communicator
    /// The reduce-scatter that `startBackward` started, which `backward` waits for.
    private var pendingBackward: CollectiveRequest?
    /// The all-gather that `startForward` started, which `finishForward` waits for.
    private var pendingForward: CollectiveRequest?

    public init(layerName: String, localShape: Shape, rankChannels: [Int], backward: Backward, communicator: Communicator) {
        precondition(rankChannels.count == communicator.size && rankChannels[communicator.rank] == localShape.channels,
                     "\(layerName): rank \(communicator.rank)'s \(localShape.channels) channels disagree with the plan's \(rankChannels)")
        precondition(backward == .slice || Set(rankChannels).count == 1, "a reduce-scatter needs equal blocks")
        self.layerName = layerName
        self.localShape = localShape
        self.rankChannels = rankChannels
        backwardMode = backward
        self.communicator = communicator
    }

    /// Whether every rank holds as many channels: then the plain all-gather serves.
    private var even: Bool { rankChannels.allSatisfy { $0 == rankChannels[0] } }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        if even {
            communicator.allGather(input, count: localShape.size * n, into: output)
        } else {
            communicator.allGather(input, counts: rankChannels.map { $0 * localShape.planeSize * n }, into: output)
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        let count = localShape.size * n
        switch backwardMode {
        case .sum:
            guard let dx else { preconditionFailure("a cross-tower gather is never a network's first stage") }
            if let pending = pendingBackward {
                pending.wait()
                pendingBackward = nil
            } else {
                communicator.reduceScatterSum(dy, count: count, into: dx)
            }
        case .slice:
            let offset = rankChannels[..<communicator.rank].reduce(0, +) * localShape.planeSize * n
            dx?.update(from: dy + offset, count: count)
        }
    }

    /// Whether `startForward` can serve: every rank holds as many channels.
    public var gathersEvenly: Bool { even }

    /// This rank's channels in the gathered tensor.
    public var ownChannels: Range<Int> {
        let first = rankChannels[..<communicator.rank].reduce(0, +)
        return first..<(first + localShape.channels)
    }

    /// Starts the all-gather (non-blocking; even blocks only) so that the next layer can compute
    /// its part over this rank's channels while the others travel; `finishForward` waits.
    /// `input` must not change, nor `output` be read, until then.
    public func startForward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int) {
        precondition(even && pendingForward == nil, "\(layerName): an all-gather in parts needs even blocks, one at a time")
        pendingForward = communicator.startAllGather(input, count: localShape.size * n, into: output)
    }

    public func progressForward() { _ = pendingForward?.test() }

    public func finishForward() {
        pendingForward?.wait()
        pendingForward = nil
    }

    /// Starts the backward pass's reduce-scatter (`.sum` only) as soon as the next layer has
    /// written its input gradient `dy`, so that it travels while that layer computes its weight
    /// gradient; `backward` then only waits for it. `dy` must not change, nor `dx` be read, until then.
    public func startBackward(outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>, batch n: Int) {
        precondition(backwardMode == .sum && pendingBackward == nil, "\(layerName): a reduce-scatter is already under way")
        pendingBackward = communicator.startReduceScatterSum(dy, count: localShape.size * n, into: dx)
    }

    /// Moves a started reduce-scatter on (an MPI test).
    public func progressBackward() { _ = pendingBackward?.test() }
}
