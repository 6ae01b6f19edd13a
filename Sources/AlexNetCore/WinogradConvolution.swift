import CBLAS

/// A stride-1 convolution computed by Winograd minimal filtering, every step a matrix product
/// so that OpenBLAS does the work:
///
/// - input: each channel plane is cut into overlapping `alpha x alpha` tiles (an im2col with
///   kernel `alpha` and stride `m`; padding and the ragged last tiles read as zero), and the
///   tiles are transformed, `Bᵀ d B`: `V[c][xi][t]`, `xi` the `alpha²` tile positions, `t` the
///   tiles of all images;
/// - filter: `U[xi][o][c] = (G ⊗ G) w[o][c]`;
/// - product: for each tile position `xi`, one GEMM `M[o][xi][·] = U[xi] V[·][xi][·]`: `alpha²`
///   GEMMs of `[O, C] x [C, tiles]` replace the direct method's one of `[O, C r²] x [C r², pixels]`;
/// - output: `Aᵀ M A` turns each `M[o][·][t]` into an `m x m` output tile, cropped at the edge.
///
/// The backward passes are the exact adjoints of these steps (so the gradients are those of the
/// function the forward pass computes): the output gradient's tiles transformed, `A dy Aᵀ`, give
/// `dM`; `dU[xi] = dM[xi] V[xi]ᵀ` folded back by `Gᵀ ⊗ Gᵀ` is the weight gradient; `dV[xi] =
/// U[xi]ᵀ dM[xi]` folded back, `B dV Bᵀ`, and added onto the overlapping input tiles is the
/// input gradient.
///
/// Each two-sided tile transform `L X Lᵀ` is applied one axis at a time (`sandwich`): `2 alpha³`
/// multiply-adds per tile instead of the `alpha⁴` of one product with `L ⊗ L`.
public final class WinogradConvolution {
    let transform: WinogradTransform
    private let channels: Int, outputs: Int, groups: Int
    private let inputPlane: Int, outputPlane: Int
    private let tilesPerImage: Int
    /// Input tiles (kernel alpha, stride m, the layer's padding) and output tiles (kernel m,
    /// stride m, no padding) of one channel plane, as im2col/col2im geometries.
    private let inputTiles: PatchGeometry
    private let outputTiles: PatchGeometry
    /// Transformed input `[groups][C/groups][alpha²][tiles]`, kept from forward for the weight
    /// gradient; backward reuses it for the input gradient's `dV`.
    private let transformedInput: Buffer
    /// Transformed filter `[alpha²][O][C/groups]`, and its gradient transposed,
    /// `[alpha²][groups][C/groups][O/groups]` (see `filterGradientProducts`).
    private let transformedFilter: Buffer
    private let transformedFilterGradient: Buffer
    /// The weight gradient in that transposed order, `[groups][C/groups][O/groups][r²]`, before it is put in place.
    private let transposedWeightGradient: Buffer
    /// Holds the product `M` (or `dM`) of one group, `[O/groups][alpha²][tiles]`, then one
    /// plane's staging `[alpha²][tiles]`, then the half-transformed tiles `[alpha²][tiles]`,
    /// then `dV` of a block of `inputGradientBlock` channels.
    private let scratch: Scratch
    private let maxTiles: Int
    /// Input channels whose `dV` is made and folded back at a time, in the scratch: so `V`
    /// outlives the input gradient, and a weight gradient computed after it (the backward pass
    /// in Megatron-LM's order, `inputGradient` then `weightGradient`) need not transform the
    /// input again. See `inputGradientBlock(channels:outputs:)`.
    private let inputGradientBlock: Int

    /// As many channels as the layer has outputs (at least 16, at most all of them): the
    /// scratch then grows to at most twice the product's size, and each `dV` product has at
    /// least as many rows as the forward pass's. Blocks of 16 made the products too thin for
    /// two OpenBLAS threads: d2l's unsplit conv3 (256 channels, 384 outputs) took the step from
    /// about 60 to 48 img/s.
    static func inputGradientBlock(channels: Int, outputs: Int) -> Int { min(channels, max(outputs, 16)) }

    private var area: Int { transform.inputTile * transform.inputTile }
    /// Floats from one channel's `[alpha²][tiles]` block to the next (in `V`, `M` and their
    /// gradients): one cache line more than the block, because with a power-of-two batch the
    /// block itself is often a power of two (conv2 of the small preset: 64 x 2048 floats), and
    /// then a product's rows, one per channel, all fell into the same few cache sets.
    private func planeStride(_ tiles: Int) -> Int { area * tiles + Self.planePadding }
    private static let planePadding = 16

    init(transform: WinogradTransform, input: Shape, output: Shape, padding: Int, groups: Int, maxBatch: Int, scratch: Scratch) {
        self.transform = transform
        let m = transform.outputTile, alpha = transform.inputTile
        precondition(output.height == input.height + 2 * padding - transform.kernel + 1, "Winograd needs stride 1")
        channels = input.channels / groups
        outputs = output.channels / groups
        self.groups = groups
        inputPlane = input.planeSize
        outputPlane = output.planeSize
        let tilesHigh = (output.height + m - 1) / m, tilesWide = (output.width + m - 1) / m
        tilesPerImage = tilesHigh * tilesWide
        inputTiles = PatchGeometry(channels: 1, height: input.height, width: input.width, kernel: alpha, stride: m,
                                   padding: padding, outHeight: tilesHigh, outWidth: tilesWide)
        outputTiles = PatchGeometry(channels: 1, height: output.height, width: output.width, kernel: m, stride: m,
                                    padding: 0, outHeight: tilesHigh, outWidth: tilesWide)
        maxTiles = maxBatch * tilesPerImage
        let buffers = Self.allocations(outputTile: m, kernel: transform.kernel, input: input, output: output, groups: groups,
                                       maxBatch: maxBatch)
        transformedInput = Buffer(count: buffers.count(of: "transformed input"))
        transformedFilter = Buffer(count: buffers.count(of: "transformed filter"))
        transformedFilterGradient = Buffer(count: buffers.count(of: "transformed filter gradient"))
        transposedWeightGradient = Buffer(count: buffers.count(of: "transposed weight gradient"))
        self.scratch = scratch
        inputGradientBlock = Self.inputGradientBlock(channels: channels, outputs: outputs)
        scratch.reserve(buffers.count(of: "product and input-gradient blocks"))
    }

    /// What an engine of `outputTile` x `outputTile` tiles allocates for batches of up to
    /// `maxBatch` images (alpha = tile + kernel - 1): the transformed input `V`, `[C][alpha²][tiles]`
    /// with each channel's block `planePadding` floats longer; the transformed filter `U` and its
    /// gradient, `[alpha²][O][C/groups]` each; the weight gradient's staging, `[O][C/groups][k²]`;
    /// and in the shared scratch the product `M`, two staging planes and a block of `dV`,
    /// `(O/groups + 2 + inputGradientBlock)` planes.
    public static func allocations(outputTile m: Int, kernel: Int, input: Shape, output: Shape, groups: Int,
                                   maxBatch: Int) -> [Allocation] {
        let alpha = m + kernel - 1, area = alpha * alpha
        let tilesPerImage = ((output.height + m - 1) / m) * ((output.width + m - 1) / m)
        let plane = elements(area, maxBatch, tilesPerImage, plus: planePadding)
        let channels = input.channels / groups, outputs = output.channels / groups
        let filter = area * output.channels * channels
        let planesInScratch = outputs + 2 + inputGradientBlock(channels: channels, outputs: outputs)
        return [Allocation("transformed input", count: elements(input.channels, plane)),
                Allocation("transformed filter", count: filter),
                Allocation("transformed filter gradient", count: filter),
                Allocation("transposed weight gradient", count: output.channels * channels * kernel * kernel),
                Allocation("product and input-gradient blocks", count: elements(planesInScratch, plane), shared: true)]
    }

    // MARK: Forward

    /// `y = bias + w * x` for a batch of `n` images, `[C, n, H, W]` -> `[O, n, Ho, Wo]`.
    func forward(input x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                 output y: UnsafeMutablePointer<Float>, batch n: Int) {
        transformFilter(weight)
        for g in 0..<groups {
            transformInput(x, group: g, batch: n)
            multiply(channels: 0..<channels, group: g, beta: 0, batch: n)
            transformOutput(bias: bias, into: y, group: g, batch: n)
        }
    }

    /// The first part of a forward pass whose input channels arrive from other ranks (one
    /// group): the product over the channels `own`, read from `localInput` (their
    /// `[own.count, n, H, W]`), while the others travel; `progress` runs between products.
    /// The product waits in the scratch for `forwardOtherChannels`.
    func forwardOwnChannels(localInput x: UnsafePointer<Float>, channels own: Range<Int>, weight: UnsafePointer<Float>,
                            batch n: Int, progress: () -> Void) {
        precondition(groups == 1, "a forward pass in parts takes one group")
        transformFilter(weight)
        transformInput(x, channels: own, group: 0, batch: n, progress: progress)
        progress()
        multiply(channels: own, group: 0, beta: 0, batch: n, progress: progress)
    }

    /// The rest: the products over the channels `others`, read from the whole input, added to
    /// the product in the scratch, then the output transform.
    func forwardOtherChannels(input x: UnsafePointer<Float>, channels others: [Range<Int>], bias: UnsafePointer<Float>,
                              output y: UnsafeMutablePointer<Float>, batch n: Int) {
        for block in others {
            transformInput(x + block.lowerBound * n * inputPlane, channels: block, group: 0, batch: n)
            multiply(channels: block, group: 0, beta: 1, batch: n)
        }
        transformOutput(bias: bias, into: y, group: 0, batch: n)
    }

    /// `M[xi] (beta: +)= U[xi][:, block] V[block][xi]` for every tile position, into the
    /// scratch's product area: the product over the input channels `block` of group `g`.
    private func multiply(channels block: Range<Int>, group g: Int, beta: Float, batch n: Int, progress: () -> Void = {}) {
        let tiles = n * tilesPerImage, area = area, product = scratch.pointer
        let v = transformedInputOf(g, tiles: tiles) + block.lowerBound * planeStride(tiles)
        for xi in 0..<area {
            if xi > 0 && xi % 4 == 0 { progress() }
            gemm(false, false, outputs, tiles, block.count, filterAt(xi, group: g) + block.lowerBound, channels,
                 v + xi * tiles, planeStride(tiles), beta, product + xi * tiles, planeStride(tiles))
        }
    }

    /// `y = bias + Aᵀ M A` for group `g`'s outputs, from the product in the scratch.
    private func transformOutput(bias: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, group g: Int, batch n: Int) {
        let tiles = n * tilesPerImage, product = scratch.pointer
        for o in 0..<outputs {
            let plane = y + (g * outputs + o) * n * outputPlane
            plane.update(repeating: bias[g * outputs + o], count: n * outputPlane)
            let staging = product + outputs * planeStride(tiles)
            sandwich(transform.output, rows: transform.outputTile, transposed: false, product + o * planeStride(tiles), into: staging, tiles: tiles)
            outputTiles.col2im(staging, batch: n, images: 0..<n, into: plane)
        }
    }

    /// `U = (G ⊗ G) wᵀ`: one GEMM over every (output, input) channel pair.
    private func transformFilter(_ weight: UnsafePointer<Float>) {
        let pairs = groups * outputs * channels, r2 = transform.kernel * transform.kernel
        gemm(false, true, area, pairs, r2, transform.filter, r2, weight, r2, 0, transformedFilter.pointer, pairs)
    }

    /// `V[c] = (Bᵀ ⊗ Bᵀ) tiles(x[c])` for every channel of group `g`; `progress` runs every 32 channels.
    private func transformInput(_ x: UnsafePointer<Float>, group g: Int, batch n: Int, progress: () -> Void = {}) {
        transformInput(x + g * channels * n * inputPlane, channels: 0..<channels, group: g, batch: n, progress: progress)
    }

    /// `V[c]` for the channels `block` of group `g`, read from `x`, which starts at the block's
    /// first channel.
    private func transformInput(_ x: UnsafePointer<Float>, channels block: Range<Int>, group g: Int, batch n: Int,
                                progress: () -> Void = {}) {
        let tiles = n * tilesPerImage
        let staging = scratch.pointer + outputs * planeStride(tiles)
        for c in block {
            if c > block.lowerBound && (c - block.lowerBound) % 32 == 0 { progress() }
            inputTiles.im2col(x + (c - block.lowerBound) * n * inputPlane, batch: n, images: 0..<n, into: staging)
            sandwich(transform.input, rows: transform.inputTile, transposed: false, staging,
                     into: transformedInputOf(g, tiles: tiles) + c * planeStride(tiles), tiles: tiles)
        }
    }

    private func transformedInputOf(_ g: Int, tiles: Int) -> UnsafeMutablePointer<Float> {
        transformedInput.pointer + g * channels * planeStride(tiles)
    }

    /// `U[xi]` of group `g`: `[O/groups, C/groups]`, leading dimension `C/groups`.
    private func filterAt(_ xi: Int, group g: Int) -> UnsafeMutablePointer<Float> {
        transformedFilter.pointer + (xi * groups + g) * outputs * channels
    }

    // MARK: Backward

    /// Adds the input gradient onto `dx` (when given; zeroed by the caller) and writes the
    /// weight gradient (when given). `inputIsTransformed`: the last forward pass ran here on
    /// this same input, so `V` is still in place.
    func backward(input x: UnsafePointer<Float>, weight: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                  inputGradient dx: UnsafeMutablePointer<Float>?, weightGradient dw: UnsafeMutablePointer<Float>?,
                  inputIsTransformed: Bool, batch n: Int) {
        let tiles = n * tilesPerImage
        if dx != nil { transformFilter(weight) }
        for g in 0..<groups {
            transformOutputGradient(dy, group: g, batch: n)
            if dw != nil {
                if !inputIsTransformed { transformInput(x, group: g, batch: n) }
                filterGradientProducts(group: g, tiles: tiles)
            }
            if let dx { addInputGradient(dx, group: g, batch: n) }
        }
        if let dw { foldFilterGradient(into: dw) }
    }

    /// The input gradient alone, added onto `dx` (zeroed by the caller): the first half of the
    /// backward pass in Megatron-LM's order (`Convolution.backwardInput`). `V` stays in place,
    /// and with one group, `dM` stays in the scratch's product area for `weightGradient`.
    func inputGradient(weight: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                       inputGradient dx: UnsafeMutablePointer<Float>, batch n: Int) {
        transformFilter(weight)
        for g in 0..<groups {
            transformOutputGradient(dy, group: g, batch: n)
            addInputGradient(dx, group: g, batch: n)
        }
    }

    /// The weight gradient alone: the second half. `outputGradientTransformed`: `inputGradient`
    /// has just run on this engine, so with one group `dM` is still in the scratch.
    /// `inputIsTransformed`: `V` of the last forward pass is in place. The same products as
    /// `backward`'s, on the same `dM` and `V`, so the same bits. `progress` runs between the products.
    func weightGradient(input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                        weightGradient dw: UnsafeMutablePointer<Float>, inputIsTransformed: Bool,
                        outputGradientTransformed: Bool, batch n: Int, progress: () -> Void) {
        let tiles = n * tilesPerImage
        for g in 0..<groups {
            if !(outputGradientTransformed && groups == 1) { transformOutputGradient(dy, group: g, batch: n) }
            progress()
            if !inputIsTransformed { transformInput(x, group: g, batch: n, progress: progress) }
            filterGradientProducts(group: g, tiles: tiles, progress: progress)
        }
        foldFilterGradient(into: dw)
    }

    /// `dw[(o, c)][r²] = dU[xi][(o, c)]ᵀ (G ⊗ G)`: one product in `dU`'s (c, o) order, then each
    /// (o, c) pair's `r²` floats copied into place.
    private func foldFilterGradient(into dw: UnsafeMutablePointer<Float>) {
        let pairs = groups * outputs * channels, r2 = transform.kernel * transform.kernel, staged = transposedWeightGradient.pointer
        gemm(true, false, pairs, r2, area, transformedFilterGradient.pointer, pairs, transform.filter, r2, 0, staged, r2)
        for g in 0..<groups {
            for o in 0..<outputs {
                for c in 0..<channels {
                    (dw + ((g * outputs + o) * channels + c) * r2).update(from: staged + ((g * channels + c) * outputs + o) * r2, count: r2)
                }
            }
        }
    }

    /// `dM[o] = (Aᵀ ⊗ Aᵀ)ᵀ tiles(dy[o])` into the product area of the scratch.
    private func transformOutputGradient(_ dy: UnsafePointer<Float>, group g: Int, batch n: Int) {
        let tiles = n * tilesPerImage
        let product = scratch.pointer, staging = product + outputs * planeStride(tiles)
        for o in 0..<outputs {
            outputTiles.im2col(dy + (g * outputs + o) * n * outputPlane, batch: n, images: 0..<n, into: staging)
            sandwich(transform.output, rows: transform.inputTile, transposed: true, staging, into: product + o * planeStride(tiles), tiles: tiles)
        }
    }

    /// `dU[xi]ᵀ = V[xi] dM[xi]ᵀ` for group `g`, `[C/groups][O/groups]`; `progress` runs after each
    /// product. Transposed because OpenBLAS runs this shape faster with the input's channels as the
    /// rows: conv2 of the small preset (12 input channels, 32 outputs, 2048 tiles, 64 positions)
    /// took 2.9 ms instead of 3.5.
    private func filterGradientProducts(group g: Int, tiles: Int, progress: () -> Void = {}) {
        let area = area, v = transformedInputOf(g, tiles: tiles)
        for xi in 0..<area {
            if xi > 0 { progress() }
            gemm(false, true, channels, outputs, tiles, v + xi * tiles, planeStride(tiles), scratch.pointer + xi * tiles, planeStride(tiles),
                 0, transformedFilterGradient.pointer + (xi * groups + g) * outputs * channels, outputs)
        }
    }

    /// `dV[xi] = U[xi]ᵀ dM[xi]` for a block of input channels at a time, into the scratch after
    /// the staging areas; then each channel's tiles folded back by `(Bᵀ ⊗ Bᵀ)ᵀ` and added onto
    /// the input positions they came from.
    private func addInputGradient(_ dx: UnsafeMutablePointer<Float>, group g: Int, batch n: Int) {
        let tiles = n * tilesPerImage, area = area, ps = planeStride(tiles)
        let staging = scratch.pointer + outputs * ps, dv = scratch.pointer + (outputs + 2) * ps
        for first in stride(from: 0, to: channels, by: inputGradientBlock) {
            let count = min(inputGradientBlock, channels - first)
            for xi in 0..<area {
                gemm(true, false, count, tiles, outputs, filterAt(xi, group: g) + first, channels, scratch.pointer + xi * tiles, ps,
                     0, dv + xi * tiles, ps)
            }
            for c in 0..<count {
                sandwich(transform.input, rows: transform.inputTile, transposed: true, dv + c * ps, into: staging, tiles: tiles)
                inputTiles.col2im(staging, batch: n, images: 0..<n, into: dx + (g * channels + first + c) * n * inputPlane)
            }
        }
    }
}

extension WinogradConvolution {
    /// `out[p][q][·] = Σ L[p][i] L[q][j] x[i][j][·]` over a block of tiles, `x` `[k][k][tiles]`,
    /// `out` `[rows][rows][tiles]`, where `L` is `[rows, k]` (or, `transposed`, stored `[k, rows]`).
    /// First along `j`, one small product per `i`, into the scratch's last area; then along `i`,
    /// one product for the whole block.
    fileprivate func sandwich(_ l: [Float], rows: Int, transposed: Bool, _ x: UnsafePointer<Float>,
                              into out: UnsafeMutablePointer<Float>, tiles: Int) {
        let k = l.count / rows, lda = transposed ? rows : k
        let half = scratch.pointer + (outputs + 1) * planeStride(tiles)
        for i in 0..<k {
            gemm(transposed, false, rows, tiles, k, l, lda, x + i * k * tiles, tiles, 0, half + i * rows * tiles, tiles)
        }
        gemm(transposed, false, rows, rows * tiles, k, l, lda, half, rows * tiles, 0, out, rows * tiles)
    }
}

/// Row-major `C = alpha op(A) op(B) + beta C` with `op(A)` `[m, k]`, `op(B)` `[k, n]`.
@inline(__always)
func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
          _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
          _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
