import CBLAS

/// Output size of a convolution or pooling window along one axis.
public func convolutionOutputSize(input: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (input + 2 * padding - kernel) / stride + 1
}

/// Where a convolution's windows fall on its input: the geometry that im2col and col2im share.
///
/// Both work through one image plane at a time copied into a zero-bordered plane
/// (`paddedHeight x paddedWidth`) that holds every window whole: each column-matrix row segment
/// is then a plain (strided) copy, with no bounds to test and no zeros to write. The planes of
/// the small preset are 7 to 15 pixels wide; a copy call and a zero fill per output row (what
/// an unpadded walk needs) cost more there than the floats they moved.
public struct PatchGeometry: Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernel: Int, stride: Int, padding: Int
    public var outHeight: Int, outWidth: Int

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int, outHeight: Int, outWidth: Int) {
        (self.channels, self.height, self.width) = (channels, height, width)
        (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
        (self.outHeight, self.outWidth) = (outHeight, outWidth)
    }

    /// Rows and columns of input that the windows span, padding included: `padding` zero rows
    /// (columns) first, then the image, then zeros as far as the last window reaches (Winograd's
    /// ragged last tiles reach past the padding).
    var paddedHeight: Int { (outHeight - 1) * stride + kernel }
    var paddedWidth: Int { (outWidth - 1) * stride + kernel }

    /// Unfolds image patches into a matrix, so that a convolution becomes one GEMM whose
    /// columns are the whole range of images. `x` is `[C, batch, H, W]`; the column matrix is
    /// `[C*k*k, images.count*Ho*Wo]`, row `(c, ki, kj)`, column `(b, oh, ow)`, its rows
    /// `rowLength` floats apart (by default packed; the whole batch's row length when `columns`
    /// points into a larger matrix).
    public func im2col(_ x: UnsafePointer<Float>, batch: Int, images: Range<Int>, into columns: UnsafeMutablePointer<Float>,
                       rowLength: Int? = nil) {
        let rowLength = rowLength ?? images.count * outHeight * outWidth
        withPaddedPlane { padded in
            // Image-major inside each channel: one image's plane stays in L1 while all k*k rows
            // read it (kernel-major order streamed the whole batch from memory k*k times).
            for c in 0..<channels {
                for (i, b) in images.enumerated() {
                    pad(x + (c * batch + b) * height * width, into: padded)
                    unfold(padded, into: columns + c * kernel * kernel * rowLength + i * outHeight * outWidth, rowLength: rowLength)
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds every column entry back onto the pixel it came from.
    /// The images' part of `dx` must be zeroed (or hold a gradient to add to) first. Each
    /// pixel's entries are summed in the padded plane, in the order a direct walk would add
    /// them, and the sum added once: with `dx` zeroed, the same bits as adding them one by one.
    public func col2im(_ columns: UnsafePointer<Float>, batch: Int, images: Range<Int>, into dx: UnsafeMutablePointer<Float>) {
        let rowLength = images.count * outHeight * outWidth
        if kernel == stride && padding == 0 { return scatterTiles(columns, batch: batch, images: images, into: dx) }
        withPaddedPlane { padded in
            for c in 0..<channels {
                for (i, b) in images.enumerated() {
                    padded.update(repeating: 0, count: paddedHeight * paddedWidth)
                    fold(columns + c * kernel * kernel * rowLength + i * outHeight * outWidth, rowLength: rowLength, into: padded)
                    addInterior(of: padded, onto: dx + (c * batch + b) * height * width)
                }
            }
        }
    }

    /// `col2im` for windows that neither overlap nor reach into padding (Winograd's output
    /// tiles): each pixel has at most one entry, added straight onto it, so the padded plane
    /// (zeroed, summed into, added back) would only be work.
    private func scatterTiles(_ columns: UnsafePointer<Float>, batch: Int, images: Range<Int>, into dx: UnsafeMutablePointer<Float>) {
        let rowLength = images.count * outHeight * outWidth
        for c in 0..<channels {
            for (i, b) in images.enumerated() {
                let image = dx + (c * batch + b) * height * width, block = columns + c * kernel * kernel * rowLength + i * outHeight * outWidth
                for ki in 0..<kernel {
                    for kj in 0..<kernel {
                        // Tiles whose pixel (ki, kj) lies inside the image (the last ones may be ragged).
                        let across = min(outWidth, max(0, (width - kj + stride - 1) / stride))
                        let down = min(outHeight, max(0, (height - ki + stride - 1) / stride))
                        let row = block + (ki * kernel + kj) * rowLength, corner = image + ki * width + kj
                        for oh in 0..<down {
                            let source = row + oh * outWidth, target = corner + oh * stride * width
                            for ow in 0..<across { target[ow * stride] += source[ow] }
                        }
                    }
                }
            }
        }
    }

    /// Runs `body` with a zeroed plane of `paddedHeight x paddedWidth` floats (on the stack
    /// when it fits there, so that a step allocates nothing for the small planes).
    @inline(__always)
    private func withPaddedPlane(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        let count = paddedHeight * paddedWidth
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(count, 1)) { plane in
            let padded = plane.baseAddress!
            padded.initialize(repeating: 0, count: max(count, 1))
            body(padded)
        }
    }

    /// The image rows and columns that some window reads (those past the last window are skipped).
    private var usedRows: Int { max(0, min(height, paddedHeight - padding)) }
    private var usedColumns: Int { max(0, min(width, paddedWidth - padding)) }

    /// Copies an image plane into the interior of `padded`, whose border is zero and stays so.
    @inline(__always)
    private func pad(_ image: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let corner = padded + padding * paddedWidth + padding, columns = usedColumns
        for ih in 0..<usedRows { stridedCopy(columns, from: image + ih * width, stride: 1, to: corner + ih * paddedWidth) }
    }

    /// The `k*k` row segments of one image: row `(ki, kj)`, entry `(oh, ow)` reads padded pixel
    /// `(oh*stride + ki, ow*stride + kj)`.
    @inline(__always)
    private func unfold(_ padded: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rowLength: Int) {
        for ki in 0..<kernel {
            for kj in 0..<kernel {
                let row = out + (ki * kernel + kj) * rowLength, window = padded + ki * paddedWidth + kj
                for oh in 0..<outHeight {
                    stridedCopy(outWidth, from: window + oh * stride * paddedWidth, stride: stride, to: row + oh * outWidth)
                }
            }
        }
    }

    /// `unfold`'s adjoint: adds the `k*k` row segments onto the padded plane, in the same order.
    @inline(__always)
    private func fold(_ out: UnsafePointer<Float>, rowLength: Int, into padded: UnsafeMutablePointer<Float>) {
        for ki in 0..<kernel {
            for kj in 0..<kernel {
                let row = out + (ki * kernel + kj) * rowLength, window = padded + ki * paddedWidth + kj
                for oh in 0..<outHeight {
                    let source = row + oh * outWidth, target = window + oh * stride * paddedWidth
                    for ow in 0..<outWidth { target[ow * stride] += source[ow] }
                }
            }
        }
    }

    /// `dx += ` the interior of the padded plane (the border holds the padding's gradient, dropped).
    @inline(__always)
    private func addInterior(of padded: UnsafePointer<Float>, onto dx: UnsafeMutablePointer<Float>) {
        let corner = padded + padding * paddedWidth + padding
        for ih in 0..<usedRows {
            let source = corner + ih * paddedWidth, target = dx + ih * width
            for iw in 0..<usedColumns { target[iw] += source[iw] }
        }
    }
}

/// `dst[o] = src[o * stride]` for `o` in `0..<count`, eight or four at a time: the rows are
/// often 7 or 15 floats, too short to be worth a `memcpy` call, and with a stride the compiler
/// leaves the loop scalar (SSE has no gather).
@inline(__always)
func stridedCopy(_ count: Int, from src: UnsafePointer<Float>, stride s: Int, to dst: UnsafeMutablePointer<Float>) {
    var o = 0
    if s == 1 {
        while o + 8 <= count {
            UnsafeMutableRawPointer(dst + o).storeBytes(of: UnsafeRawPointer(src + o).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            o += 8
        }
        if o + 4 <= count {
            UnsafeMutableRawPointer(dst + o).storeBytes(of: UnsafeRawPointer(src + o).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
            o += 4
        }
    } else {
        while o + 4 <= count {
            let p = src + o * s
            UnsafeMutableRawPointer(dst + o).storeBytes(of: SIMD4(p[0], p[s], p[2 * s], p[3 * s]), as: SIMD4<Float>.self)
            o += 4
        }
    }
    while o < count {
        dst[o] = src[o * s]
        o += 1
    }
}

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
        columns = Buffer(count: groups * rows * maxBatch * outputShape.planeSize)
        chunk = chunkImages ?? max(1, min(maxBatch, (4 << 20) / max(rows * outputShape.planeSize, 1)))
        scratch.reserve(rows * chunk * outputShape.planeSize)
        forwardChunk = forwardChunkImages
            ?? Self.forwardChunk(outputsPerGroup: outputs / groups, rows: rows, plane: outputShape.planeSize, maxBatch: maxBatch)
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
        columns = needsColumns ? (columns.count > 0 ? columns : Buffer(count: groups * rowsPerGroup * maxBatch * outputShape.planeSize))
                               : Buffer(count: 0)
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
        let cg = inputShape.channels / groups, keep = algorithms.weightGradient == .gemm
        let step = keep ? forwardChunk : min(forwardChunk, chunk)
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

    /// The forward pass's part over input channels `own` (`GatheredInputFirst`; one group).
    public func forwardOwnChannels(localInput x: UnsafePointer<Float>, channels own: Range<Int>, output y: UnsafeMutablePointer<Float>,
                                   batch n: Int, progress: () -> Void) {
        precondition(groups == 1, "\(layerName): a forward pass in parts takes one group")
        guard algorithms.forward == .gemm else {
            return engine(algorithms.forward).forwardOwnChannels(localInput: x, channels: own, weight: weight.value.pointer,
                                                                  batch: n, progress: progress)
        }
        let plane = outputShape.planeSize, length = n * plane
        for first in Swift.stride(from: 0, to: n, by: forwardChunk) {
            let images = first..<min(first + forwardChunk, n)
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
        for first in Swift.stride(from: 0, to: n, by: forwardChunk) {
            for block in others {
                unfoldAndMultiply(x + block.lowerBound * n * inputShape.planeSize, channels: block,
                                  images: first..<min(first + forwardChunk, n), into: y, batch: n)
            }
        }
    }

    /// Unfolds input channels `block` of `images` (read from `x`, which starts at the block's
    /// first channel) into their rows of `columns`, and adds their part of the product onto `y`.
    private func unfoldAndMultiply(_ x: UnsafePointer<Float>, channels block: Range<Int>, images: Range<Int>,
                                   into y: UnsafeMutablePointer<Float>, batch n: Int) {
        let plane = outputShape.planeSize, length = n * plane, k2 = kernel * kernel
        var part = geometry
        part.channels = block.count
        let cols = columns.pointer + block.lowerBound * k2 * length + images.lowerBound * plane
        part.im2col(x, batch: n, images: images, into: cols, rowLength: length)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outputShape.channels), Int32(images.count * plane), Int32(block.count * k2),
                    1, weight.value.pointer + block.lowerBound * k2, Int32(rowsPerGroup), cols, Int32(length),
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

    /// The weight and bias gradients, after `backwardInput`. When both gradients use the same
    /// Winograd engine, the input gradient overwrote its transformed input, which is made again.
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
                                      inputIsTransformed: algorithms.forward == wg && ig != wg, outputGradientTransformed: ig == wg,
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
