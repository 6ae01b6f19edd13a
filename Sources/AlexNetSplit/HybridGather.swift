import AlexNetComm
import AlexNetCore

/// Where the ranks of the hybrid layout meet (HybridPlan.swift): every rank holds one block of a
/// `[rows, B]` activation (B the step's whole batch), and the gather gives every rank the whole.
///
/// Rank k of `communicator` (its slice, `HybridPosition.slice`: tower k / R, replica k % R) holds
/// - `.images`: its tower's features of its replica's images, `[F_t, n_r]`: rows
///   `F_0 + ... + F_(t-1) ..< + F_t`, columns `n_0 + ... + n_(r-1) ..< + n_r`: the fc6 input;
/// - `.slices`: its units of a fully-connected layer for every image, `[u_k, B]`: rows
///   `u_0 + ... + u_(k-1) ..< + u_k`, every column: the next layer's input, or the logits.
///
/// Backward, `.sum`: each rank's input gradient is its own units' part of the whole; rank k gets
/// the sum over all ranks of block k (a reduce-scatter). It is an all-to-all of the blocks
/// (each padded to the largest) and the blocks added in rank order, here, so the bits are the
/// same over MPI and in-process. `.slice`: the logits' gradient, the same on every rank; each
/// keeps its block.
public final class HybridGather: Stage {
    public typealias Blocks = HybridBlocks

    public let layerName: String
    public let blocks: Blocks
    public let backwardMode: GatherBackward
    private let communicator: Communicator
    /// Images of each replica in the step; the network sets them before the forward pass.
    public var shares: [Int] = []
    /// `.images`: the blocks as they arrive, before they take their place in the whole.
    private let packed: Buffer
    /// `.sum`: what goes to each rank, and what comes from each, padded blocks.
    private let send: Buffer, received: Buffer

    /// `maxShare`: the most images one of the `replicas` replicas holds in a step.
    public init(layerName: String, blocks: Blocks, backward: GatherBackward, communicator: Communicator, maxShare: Int,
                replicas: Int) {
        self.layerName = layerName
        self.blocks = blocks
        backwardMode = backward
        self.communicator = communicator
        let p = communicator.size
        switch blocks {
        case let .images(features, replicas):
            precondition(features.count * replicas == p, "\(layerName): \(features.count) towers x \(replicas) replicas on \(p) ranks")
            packed = Buffer(count: features.reduce(0, +) * maxShare * replicas)
            let block = backward == .sum ? features.max()! * maxShare : 0
            (send, received) = (Buffer(count: p * block), Buffer(count: p * block))
        case let .slices(units):
            precondition(units.count == p, "\(layerName): \(units.count) slices on \(p) ranks")
            packed = Buffer(count: 0)
            let block = backward == .sum ? units.max()! * maxShare * replicas : 0
            (send, received) = (Buffer(count: p * block), Buffer(count: p * block))
        }
    }

    /// Rows and columns of rank k's block in the whole `[rows, B]`, at this step's shares.
    public func block(_ k: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let whole = shares.reduce(0, +)
        switch blocks {
        case let .images(features, replicas):
            let (t, r) = (k / replicas, k % replicas)
            let row = features[..<t].reduce(0, +), column = shares[..<r].reduce(0, +)
            return (row..<(row + features[t]), column..<(column + shares[r]))
        case let .slices(units):
            let row = units[..<k].reduce(0, +)
            return (row..<(row + units[k]), 0..<whole)
        }
    }

    private var counts: [Int] { (0..<communicator.size).map { let b = block($0); return b.rows.count * b.columns.count } }

    /// input `[block rows, block columns]` of this rank -> output `[rows, B]`; `n` is B.
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        precondition(shares.reduce(0, +) == n, "\(layerName): shares \(shares) for a batch of \(n)")
        guard case .images = blocks else {
            communicator.allGather(input, counts: counts, into: output)  // the blocks in rank order are the whole
            return
        }
        communicator.allGather(input, counts: counts, into: packed.pointer)
        var offset = 0
        for k in 0..<communicator.size {
            let (rows, columns) = block(k)
            for (i, row) in rows.enumerated() {
                (output + row * n + columns.lowerBound).update(from: packed.pointer + offset + i * columns.count, count: columns.count)
            }
            offset += rows.count * columns.count
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        guard let dx else { preconditionFailure("a gather is never a network's first stage") }
        let mine = block(communicator.rank)
        switch backwardMode {
        case .slice:
            copy(dy, block: mine, batch: n, into: dx)
        case .sum:
            let sizes = counts, width = sizes.max() ?? 0
            for k in 0..<communicator.size {
                copy(dy, block: block(k), batch: n, into: send.pointer + k * width)
                (send.pointer + k * width + sizes[k]).update(repeating: 0, count: width - sizes[k])
            }
            communicator.allToAll(send.pointer, count: width, into: received.pointer)
            let count = sizes[communicator.rank]
            dx.update(from: received.pointer, count: count)
            for k in 1..<communicator.size {
                let other = received.pointer + k * width
                for i in 0..<count { dx[i] += other[i] }
            }
        }
    }

    /// Block `b` of the whole `[rows, n]` in `whole`, row after row, into `target`.
    private func copy(_ whole: UnsafePointer<Float>, block b: (rows: Range<Int>, columns: Range<Int>), batch n: Int,
                      into target: UnsafeMutablePointer<Float>) {
        for (i, row) in b.rows.enumerated() {
            (target + i * b.columns.count).update(from: whole + row * n + b.columns.lowerBound, count: b.columns.count)
        }
    }
}
