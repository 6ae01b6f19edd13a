import CBLAS

/// 2-D convolution with stride, padding and groups: im2col plus one SGEMM per group, or for
/// stride 1, Winograd minimal filtering (`WinogradConvolution`), chosen per pass by `use(_:)`.
///
/// weight `[O, C/groups, k, k]` (PyTorch's layout), bias `[O]`.
/// input `[C, n, H, W]` -> output `[O, n, Ho, Wo]`.
/// Group `g` reads input channels `g*C/groups ..< (g+1)*C/groups` and writes outputs
/// `g*O/groups ..< (g+1)*O/groups`: a tower, when the network holds several towers.
public final class Convolution: InputGradientFirst, GatheredInputFirst {
    public let layerName: String
    public let inputShape: Shape
    public let outputShape: Shape
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let groups: Int
    public let weight: Parameter
    public let bias: Parameter
    public var parameters: [Parameter] { [weight, bias] }
    /// The algorithm of each pass; im2col + GEMM until `use(_:)` says otherwise.
    public private(set) var algorithms = ConvolutionAlgorithms.gemm

    /// Unfolded input of every group, kept from forward for the weight gradient; allocated only
    /// while the forward pass or the weight gradient uses GEMM.
    private var columns: Buffer
    /// The columns' size while they are kept.
    private let columnCount: Int
    /// Shared workspace for the input gradient's columns, a chunk of images at a time.
    private let scratch: Scratch
    private let geometry: PatchGeometry
    /// Images per input-gradient chunk: about 16 MiB of columns, so col2im reads from cache and
    /// the workspace stays small whatever the batch.
    private let chunk: Int
    /// Images per forward GEMM (see `forwardChunk(...)`).
    private let forwardChunk: Int
    private let maxBatch: Int
    /// Winograd engines by tile size, built on first use.
    private var winograd: [ConvolutionAlgorithm: WinogradConvolution] = [:]

    public init(layerName: String, input: Shape, outputs: Int, kernel: Int, stride: Int, padding: Int,
                groups: Int, maxBatch: Int, scratch: Scratch, chunkImages: Int? = nil, forwardChunkImages: Int? = nil) {
        precondition(input.channels % groups == 0 && outputs % groups == 0, "channels must divide into groups")
        self.layerName = layerName
        inputShape = input
        outputShape = Shape(channels: outputs,
                            height: convolutionOutputSize(input: input.height, kernel: kernel, stride: stride, padding: padding),
                            width: convolutionOutputSize(input: input.width, kernel: kernel, stride: stride, padding: padding))
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.scratch = scratch
        self.maxBatch = maxBatch
        weight = Parameter(name: "\(layerName).weight", shape: [outputs, input.channels / groups, kernel, kernel])
        bias = Parameter(name: "\(layerName).bias", shape: [outputs])
        geometry = PatchGeometry(channels: input.channels / groups, height: input.height, width: input.width, kernel: kernel,
                                 stride: stride, padding: padding, outHeight: outputShape.height, outWidth: outputShape.width)
        let rows = input.channels / groups * kernel * kernel
        chunk = chunkImages ?? Self.inputGradientChunk(rows: rows, plane: outputShape.planeSize, maxBatch: maxBatch)
        let buffers = Self.allocations(input: input, output: outputShape, kernel: kernel, groups: groups, maxBatch: maxBatch,
                                       chunkImages: chunk)
        columnCount = buffers.count(of: "columns")
        columns = Buffer(count: columnCount)
        scratch.reserve(buffers.count(of: "input-gradient columns"))
        forwardChunk = forwardChunkImages
            ?? Self.forwardChunk(outputsPerGroup: outputs / groups, rows: rows, plane: outputShape.planeSize, maxBatch: maxBatch)
    }

    /// What a GEMM convolution allocates for batches of up to `maxBatch` images: the im2col
    /// columns of every group for the whole batch, kept from the forward pass for the weight
    /// gradient, and the input gradient's columns, `chunkImages` images at a time (by default
    /// `inputGradientChunk`), in the shared scratch. The Winograd engines `use(_:)` builds add
    /// `WinogradConvolution.allocations`.
    public static func allocations(input: Shape, output: Shape, kernel: Int, groups: Int, maxBatch: Int,
                                   chunkImages: Int? = nil) -> [Allocation] {
        let rows = input.channels / groups * kernel * kernel, plane = output.planeSize
        let chunk = chunkImages ?? inputGradientChunk(rows: rows, plane: plane, maxBatch: maxBatch)
        return [Allocation("columns", count: elements(groups, rows, maxBatch, plane)),
                Allocation("input-gradient columns", count: elements(rows, chunk, plane), shared: true)]
    }

    /// Images per input-gradient chunk: about 4 Mi floats (16 MiB) of columns, at least one image.
    static func inputGradientChunk(rows: Int, plane: Int, maxBatch: Int) -> Int {
        max(1, min(maxBatch, (4 << 20) / max(rows * plane, 1)))
    }

    /// Images per forward GEMM: about 4 MiB of columns, so that they are read back from cache,
    /// but enough images that the weights (which every GEMM call packs anew) are at most 1/16 of
    /// the columns they multiply. conv1 (363 x 3025 columns per image, 48 x 363 weights) runs
    /// one image at a time; conv3-conv5, whose weights are larger than an image's columns,
    /// run in a few large chunks.
    static func forwardChunk(outputsPerGroup: Int, rows: Int, plane: Int, maxBatch: Int) -> Int {
        let perImage = max(rows * plane, 1)
        let cached = (1 << 20) / perImage, amortised = (16 * outputsPerGroup + plane - 1) / max(plane, 1)
        return max(1, min(maxBatch, max(cached, amortised)))
    }

    private var rowsPerGroup: Int { inputShape.channels / groups * kernel * kernel }

    /// Whether `algorithm` can compute this layer: Winograd needs stride 1 and a tile of at most 8.
    public func supports(_ algorithm: ConvolutionAlgorithm) -> Bool {
        guard let tile = algorithm.outputTile else { return true }
        return stride == 1 && tile + kernel - 1 <= 8
    }

    /// Switches the passes to `choice`, allocating what the new algorithms keep between passes
    /// and freeing what no pass needs any more. Call while building or between steps.
    public func use(_ choice: ConvolutionAlgorithms) {
        for a in choice.all { precondition(supports(a), "\(layerName) cannot run \(a.rawValue)") }
        algorithms = choice
        let needsColumns = choice.weightGradient == .gemm
        columns = needsColumns ? (columns.count > 0 ? columns : Buffer(count: columnCount)) : Buffer(count: 0)
        winograd = winograd.filter { choice.all.contains($0.key) }
        for a in choice.all where a.outputTile != nil { _ = engine(a) }
    }

    private func engine(_ algorithm: ConvolutionAlgorithm) -> WinogradConvolution {
        if let built = winograd[algorithm] { return built }
        let built = WinogradConvolution(transform: WinogradTransform(outputTile: algorithm.outputTile!, kernel: kernel),
                                        input: inputShape, output: outputShape, padding: padding, groups: groups,
                                        maxBatch: maxBatch, scratch: scratch)
        winograd[algorithm] = built
        return built
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int, context: StepContext) {
        if algorithms.forward == .gemm {
            gemmForward(input: input, output: output, batch: n)
        } else {
            engine(algorithms.forward).forward(input: input, weight: weight.value.pointer, bias: bias.value.pointer, output: output, batch: n)
        }
    }

    /// Unfolds and multiplies `forwardChunk` images at a time: the GEMM reads each chunk of
    /// columns, and adds onto the chunk of the output that was just filled with the bias, while
    /// both are still in cache. When the weight gradient uses the columns they go in place in
    /// `columns`; otherwise each chunk reuses the shared scratch, which stays in cache rather
    /// than streaming the whole batch's columns (14 MiB for the small preset's conv3) to memory.
    private func gemmForward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch n: Int) {
        let og = outputShape.channels / groups, plane = outputShape.planeSize, length = n * plane, rows = rowsPerGroup
        let cg = inputShape.channels / groups, keep = keepsColumns, step = forwardStep
        for g in 0..<groups {
            let x = input + g * cg * n * inputShape.planeSize, y = output + g * og * length
            for first in Swift.stride(from: 0, to: n, by: step) {
                let images = first..<min(first + step, n), width = images.count * plane
                let (cols, ld) = keep ? (columns.pointer + g * rows * length + first * plane, length) : (scratch.pointer, width)
                geometry.im2col(x, batch: n, images: images, into: cols, rowLength: ld)
                for o in 0..<og { (y + o * length + first * plane).update(repeating: bias.value.pointer[g * og + o], count: width) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(og), Int32(width), Int32(rows),
                            1, weight.value.pointer + g * og * rows, Int32(rows), cols, Int32(ld),
                            1, y + first * plane, Int32(length))
            }
        }
    }

    /// Whether the forward pass leaves the whole batch's columns in `columns`: only for a GEMM
    /// weight gradient, which reads them back. Otherwise `use(_:)` frees `columns`, and a GEMM
    /// forward pass unfolds each chunk into the shared scratch.
    private var keepsColumns: Bool { algorithms.weightGradient == .gemm }

    /// Images per chunk of a GEMM forward pass: `forwardChunk`, and no more than the scratch
    /// holds when the chunks go through it.
    private var forwardStep: Int { keepsColumns ? forwardChunk : min(forwardChunk, chunk) }

    /// The forward pass's part over input channels `own` (`GatheredInputFirst`; one group).
    public func forwardOwnChannels(localInput x: UnsafePointer<Float>, channels own: Range<Int>, output y: UnsafeMutablePointer<Float>,
                                   batch n: Int, progress: () -> Void) {
        precondition(groups == 1, "\(layerName): a forward pass in parts takes one group")
        guard algorithms.forward == .gemm else {
            return engine(algorithms.forward).forwardOwnChannels(localInput: x, channels: own, weight: weight.value.pointer,
                                                                  batch: n, progress: progress)
        }
        let plane = outputShape.planeSize, length = n * plane
        for first in Swift.stride(from: 0, to: n, by: forwardStep) {
            let images = first..<min(first + forwardStep, n)
            for o in 0..<outputShape.channels {
                (y + o * length + first * plane).update(repeating: bias.value.pointer[o], count: images.count * plane)
            }
            unfoldAndMultiply(x, channels: own, images: images, into: y, batch: n)
            progress()
        }
    }

    /// The rest of the forward pass, over the other input channels of the gathered `input`.
    public func forwardOtherChannels(input x: UnsafePointer<Float>, channels own: Range<Int>, output y: UnsafeMutablePointer<Float>,
                                     batch n: Int) {
        let others = channels(inputShape.channels, except: own)
        guard algorithms.forward == .gemm else {
            return engine(algorithms.forward).forwardOtherChannels(input: x, channels: others, bias: bias.value.pointer, output: y, batch: n)
        }
        for first in Swift.stride(from: 0, to: n, by: forwardStep) {
            for block in others {
                unfoldAndMultiply(x + block.lowerBound * n * inputShape.planeSize, channels: block,
                                  images: first..<min(first + forwardStep, n), into: y, batch: n)
            }
        }
    }

    /// Unfolds input channels `block` of `images` (read from `x`, which starts at the block's
    /// first channel) into their rows of `columns` (or, when the columns are not kept, into the
    /// scratch: `forwardStep` images fit), and adds their part of the product onto `y`.
    private func unfoldAndMultiply(_ x: UnsafePointer<Float>, channels block: Range<Int>, images: Range<Int>,
                                   into y: UnsafeMutablePointer<Float>, batch n: Int) {
        let plane = outputShape.planeSize, length = n * plane, k2 = kernel * kernel
        var part = geometry
        part.channels = block.count
        let (cols, ld): (UnsafeMutablePointer<Float>, Int)
        if keepsColumns {
            precondition(columns.count >= rowsPerGroup * length, "\(layerName): the columns were freed")
            (cols, ld) = (columns.pointer + block.lowerBound * k2 * length + images.lowerBound * plane, length)
        } else {
            precondition(scratch.count >= block.count * k2 * images.count * plane, "\(layerName): a chunk larger than the scratch")
            (cols, ld) = (scratch.pointer, images.count * plane)
        }
        part.im2col(x, batch: n, images: images, into: cols, rowLength: ld)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outputShape.channels), Int32(images.count * plane), Int32(block.count * k2),
                    1, weight.value.pointer + block.lowerBound * k2, Int32(rowsPerGroup), cols, Int32(ld),
                    1, y + images.lowerBound * plane, Int32(length))
    }

    /// im2col of every group into `columns`.
    private func unfold(_ input: UnsafePointer<Float>, batch n: Int) {
        let cg = inputShape.channels / groups, length = n * outputShape.planeSize
        for g in 0..<groups {
            geometry.im2col(input + g * cg * n * inputShape.planeSize, batch: n, images: 0..<n,
                            into: columns.pointer + g * rowsPerGroup * length)
        }
    }

    public func backward(input: UnsafePointer<Float>, output: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?, batch n: Int) {
        let og = outputShape.channels / groups, length = n * outputShape.planeSize
        if let dx { dx.update(repeating: 0, count: inputShape.size * n) }
        for o in 0..<groups * og { bias.gradient.pointer[o] = sum(dy + o * length, count: length) }
        let (wg, ig) = (algorithms.weightGradient, algorithms.inputGradient)
        if wg == .gemm {
            if algorithms.forward != .gemm { unfold(input, batch: n) }
            gemmWeightGradient(dy, batch: n)
        }
        if let dx, ig == .gemm { gemmInputGradient(dy, into: dx, batch: n) }
        // One Winograd call for both gradients when they share a tile size: dM is made once.
        for a in Set([wg, ig]) where a != .gemm {
            engine(a).backward(input: input, weight: weight.value.pointer, outputGradient: dy,
                               inputGradient: ig == a ? dx : nil, weightGradient: wg == a ? weight.gradient.pointer : nil,
                               inputIsTransformed: algorithms.forward == a, batch: n)
        }
    }

    /// The input gradient alone (`InputGradientFirst`): what `backward` writes into `dx`.
    public func backwardInput(input: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                              inputGradient dx: UnsafeMutablePointer<Float>, batch n: Int) {
        dx.update(repeating: 0, count: inputShape.size * n)
        let ig = algorithms.inputGradient
        if ig == .gemm {
            gemmInputGradient(dy, into: dx, batch: n)
        } else {
            engine(ig).inputGradient(weight: weight.value.pointer, outputGradient: dy, inputGradient: dx, batch: n)
        }
    }

    /// The weight and bias gradients, after `backwardInput`. A Winograd weight gradient reads
    /// the input the forward pass transformed, when that pass used the same tile size.
    public func backwardParameters(input: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>, batch n: Int,
                                   progress: () -> Void) {
        let length = n * outputShape.planeSize
        for o in 0..<outputShape.channels { bias.gradient.pointer[o] = sum(dy + o * length, count: length) }
        let (wg, ig) = (algorithms.weightGradient, algorithms.inputGradient)
        if wg == .gemm {
            if algorithms.forward != .gemm { unfold(input, batch: n) }
            progress()
            gemmWeightGradient(dy, batch: n, rowBlocks: true, progress: progress)
        } else {
            engine(wg).weightGradient(input: input, outputGradient: dy, weightGradient: weight.gradient.pointer,
                                      inputIsTransformed: algorithms.forward == wg, outputGradientTransformed: ig == wg,
                                      batch: n, progress: progress)
        }
    }

    /// dW_g [og, rows] = dY_g [og, length] * cols_g^T; with `rowBlocks`, a block of dW's rows
    /// at a time (`weightGradientRowBlocks`), `progress` between them.
    private func gemmWeightGradient(_ dy: UnsafePointer<Float>, batch n: Int, rowBlocks: Bool = false, progress: () -> Void = {}) {
        let og = outputShape.channels / groups, length = n * outputShape.planeSize, rows = rowsPerGroup
        for g in 0..<groups {
            for block in rowBlocks ? weightGradientRowBlocks(og, multiplyAddsPerRow: rows * length) : [0..<og] {
                if block.lowerBound > 0 || g > 0 { progress() }
                let o = g * og + block.lowerBound
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(block.count), Int32(rows), Int32(length),
                            1, dy + o * length, Int32(length), columns.pointer + g * rows * length, Int32(length), 0,
                            weight.gradient.pointer + o * rows, Int32(rows))
            }
        }
    }

    /// dcols [rows, images*plane] = W_g^T * dY_g[:, images], folded back a chunk at a time.
    private func gemmInputGradient(_ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, batch n: Int) {
        let cg = inputShape.channels / groups, og = outputShape.channels / groups
        let plane = outputShape.planeSize, length = n * plane, rows = rowsPerGroup
        for g in 0..<groups {
            for first in Swift.stride(from: 0, to: n, by: chunk) {
                let images = first..<min(first + chunk, n), width = images.count * plane
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(width), Int32(og),
                            1, weight.value.pointer + g * og * rows, Int32(rows), dy + g * og * length + first * plane, Int32(length),
                            0, scratch.pointer, Int32(width))
                geometry.col2im(scratch.pointer, batch: n, images: images, into: dx + g * cg * n * inputShape.planeSize)
            }
        }
    }
}

/// Sum of `count` floats, accumulated in Double so that long rows do not lose precision.
/// Eight running sums, one per lane, then added pairwise: one running sum was a chain of
/// dependent additions that could not start before the last one ended (15 ms per step for
/// conv1's bias gradient alone). The order is fixed, so the result does not depend on the machine.
@inline(__always)
func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Double>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        let p = x + i
        lanes += SIMD8<Double>(Double(p[0]), Double(p[1]), Double(p[2]), Double(p[3]),
                               Double(p[4]), Double(p[5]), Double(p[6]), Double(p[7]))
        i += 8
    }
    var total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    while i < count {
        total += Double(x[i])
        i += 1
    }
    return Float(total)
}
