/// Per-sample shape of an activation: channels x height x width.
/// Fully-connected activations are `features x 1 x 1`.
public struct Shape: Equatable, CustomStringConvertible, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int = 1, width: Int = 1) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Elements per sample.
    public var size: Int { channels * height * width }
    /// Elements per channel plane of one sample.
    public var planeSize: Int { height * width }
    public var isFlat: Bool { height == 1 && width == 1 }
    public var description: String { isFlat ? "\(channels)" : "\(channels)x\(height)x\(width)" }
}

/// What a stage needs to know about the step it runs in.
public struct StepContext: Sendable {
    /// Dropout is on only when training.
    public var training: Bool
    /// Global step number; keys the dropout masks.
    public var step: Int
    /// Run seed; keys the dropout masks.
    public var seed: UInt64
    /// With replicas: where this rank's samples start within the step's global batch, and that
    /// batch's size (nil: this rank has the whole batch). Dropout keys each sample's mask by its
    /// place in the global batch, so a sample is masked alike however many replicas share it.
    public var sampleOffset: Int
    public var globalBatch: Int?
    /// The hybrid layout only: the images of every replica in this step, in replica order (the
    /// fully-connected layers compute on all of them).
    public var replicaShares: [Int]?

    public init(training: Bool, step: Int, seed: UInt64, sampleOffset: Int = 0, globalBatch: Int? = nil, replicaShares: [Int]? = nil) {
        self.training = training
        self.step = step
        self.seed = seed
        self.sampleOffset = sampleOffset
        self.globalBatch = globalBatch
        self.replicaShares = replicaShares
    }
}

/// One operation of a network, with its forward and backward pass side by side.
///
/// Activations are channel-major, `[C, n, H, W]`: channel `c` of all `n` samples is one
/// contiguous slab. That makes the batch-folded im2col GEMM write its output in place and
/// makes concatenating the towers' channels a plain contiguous all-gather.
/// Fully-connected activations are `[F, n]`.
public protocol Stage: AnyObject {
    /// The layer this stage belongs to, e.g. `conv3`.
    var layerName: String { get }
    /// Trainable tensors (empty for parameter-free stages).
    var parameters: [Parameter] { get }
    /// input `[inputShape, n]` -> output `[outputShape, n]`.
    func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext)
    /// Reads `output` and `outputGradient` (and `input`); writes parameter gradients, and the
    /// input gradient when `inputGradient` is not nil (the first stage of a network skips it).
    func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                  outputGradient: UnsafePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?, batch n: Int)
}

public extension Stage {
    var parameters: [Parameter] { [] }
}

/// A stage whose backward pass can also run in two halves, input gradient first, as Megatron-LM
/// orders it: a cross-connected layer's input gradient then travels to the other towers (a
/// non-blocking reduce-scatter) while the layer computes its weight gradient (`Network.backward`).
/// The two halves compute what `backward` computes: bit for bit, except a GEMM weight gradient
/// cut into row blocks, which is within rounding of the whole product (see
/// `weightGradientRowBlocks`). Every rank and run takes the same path, so `mpirun` still
/// equals `--simulate` bit for bit.
public protocol InputGradientFirst: Stage {
    /// Writes the input gradient `[inputShape, n]` into `inputGradient`, and nothing else.
    func backwardInput(input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
                       inputGradient: UnsafeMutablePointer<Float>, batch n: Int)
    /// Writes the parameter gradients, after `backwardInput`; calls `progress` between pieces of
    /// the work, so that a transfer in flight gets the MPI calls that move it.
    func backwardParameters(input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>, batch n: Int, progress: () -> Void)
}

/// A layer whose forward pass can also run in two parts around the all-gather that feeds it:
/// it is linear in its input channels (or features), so the part over this rank's own block
/// can run, read from the rank's own activations, while the other ranks' blocks travel
/// (`Network.forward`). The sum then runs over the blocks in another order than in one pass:
/// within rounding of `forward`, the same on every rank and run.
public protocol GatheredInputFirst: Stage {
    /// `output = bias + the part of the layer over input channels `own``, read from
    /// `localInput` (`[own.count, n, ...]`); calls `progress` between pieces of the work.
    func forwardOwnChannels(localInput: UnsafePointer<Float>, channels own: Range<Int>, output: UnsafeMutablePointer<Float>,
                            batch n: Int, progress: () -> Void)
    /// Adds the part over every other input channel, read from the whole gathered `input`.
    func forwardOtherChannels(input: UnsafePointer<Float>, channels own: Range<Int>, output: UnsafeMutablePointer<Float>, batch n: Int)
}

/// The input channels (or features) `0..<count` other than `own`, as at most two blocks in order.
func channels(_ count: Int, except own: Range<Int>) -> [Range<Int>] {
    [0..<own.lowerBound, own.upperBound..<count].filter { !$0.isEmpty }
}

/// Row blocks of an `[rows, ...]` weight gradient computed one GEMM at a time, so that
/// `progress` can run between them: at most about 8, of whole multiples of 16 rows, each of at
/// least 2^22 multiply-adds (`multiplyAddsPerRow` each row); one block when the GEMM is smaller.
/// Each row of a GEMM's result depends only on its own row of the left operand, but OpenBLAS
/// may round a block of rows differently from the whole product: small products go to other
/// kernels (hence the 2^22 floor), and on its Haswell and Zen kernels (machines without
/// AVX-512) even blocks this large differ from the whole in the last bits; on SkylakeX they
/// match. The blocks depend only on the shape, never on the machine or the rank
/// (`InputGradientFirstTests`).
func weightGradientRowBlocks(_ rows: Int, multiplyAddsPerRow: Int) -> [Range<Int>] {
    func wholeSixteens(_ count: Int) -> Int { (count + 15) / 16 * 16 }
    let least = wholeSixteens(((1 << 22) + multiplyAddsPerRow - 1) / max(multiplyAddsPerRow, 1))
    let block = max(wholeSixteens(rows / 8), least)
    var blocks: [Range<Int>] = []
    var start = 0
    while start < rows {
        // A last piece smaller than `least` joins the one before it.
        let end = rows - (start + block) < least ? rows : start + block
        blocks.append(start..<end)
        start = end
    }
    return blocks
}

/// Scratch memory shared by the stages of one network: backward passes run one at a time,
/// so one block sized for the largest need serves all of them.
public final class Scratch {
    private var buffer = Buffer(count: 0)

    public init() {}

    /// Grows the block to at least `count` floats. Call while building, never per step.
    public func reserve(_ count: Int) {
        if count > buffer.count { buffer = Buffer(count: count) }
    }

    public var pointer: UnsafeMutablePointer<Float> { buffer.pointer }
    public var count: Int { buffer.count }
}
