// im2col and col2im: how a convolution's windows are unfolded into a matrix, and folded back.

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
        if walksImageGroups { return im2colByImageGroups(x, batch: batch, images: images, into: columns, rowLength: rowLength) }
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
        if walksImageGroups { return col2imByImageGroups(columns, batch: batch, images: images, into: dx) }
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
    /// tiles) in rows too wide for `walksImageGroups`: each pixel has at most one entry, added
    /// straight onto it, so the padded plane (zeroed, summed into, added back) would only be
    /// work. Short rows go through the planes and the table of corners, whose loop is cheaper
    /// than this one's per-row bounds.
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

    /// Strided rows of windows narrower than this are unfolded and folded a group of images at
    /// a time through a table of window corners, rather than row by row: a row of 2 to 7
    /// windows (Winograd's tile grids) is too short for `stridedCopy`'s vector loop, and a call
    /// and a loop set-up per row cost more than the few floats they moved. A stride-1 row of 7
    /// (the small preset's GEMM convolutions) is one contiguous copy, which the row walk does
    /// faster: about 10% on conv3-conv5's GEMM forward passes.
    static let shortRow = 8

    /// Whether im2col and col2im take the table of corners over groups of images.
    var walksImageGroups: Bool { outWidth < Self.shortRow && stride > 1 }

    /// Images whose padded planes fit together in 16 Ki floats (64 KiB: L2), at least one.
    private func imagesPerGroup(_ images: Int) -> Int {
        max(1, min(images, (1 << 14) / max(paddedHeight * paddedWidth, 1)))
    }

    /// Runs `body` with `group` zeroed padded planes, one after another, and the offset of every
    /// window's corner in them, in (image, oh, ow) order: image j's window (oh, ow) at
    /// `j * paddedHeight * paddedWidth + oh * stride * paddedWidth + ow * stride`. A kernel
    /// position's entries for the whole group are then one loop over the table.
    @inline(__always)
    private func withPlaneGroup(_ group: Int, _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Int>) -> Void) {
        let planeFloats = paddedHeight * paddedWidth, windows = outHeight * outWidth
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(group * planeFloats, 1)) { planes in
            planes.baseAddress!.initialize(repeating: 0, count: max(group * planeFloats, 1))
            withUnsafeTemporaryAllocation(of: Int.self, capacity: max(group * windows, 1)) { corners in
                for j in 0..<group {
                    for oh in 0..<outHeight {
                        for ow in 0..<outWidth {
                            corners[(j * outHeight + oh) * outWidth + ow] = j * planeFloats + oh * stride * paddedWidth + ow * stride
                        }
                    }
                }
                body(planes.baseAddress!, UnsafePointer(corners.baseAddress!))
            }
        }
    }

    /// `im2col` for short rows: each group of images padded into `withPlaneGroup`'s planes, then
    /// each kernel position's row segment for the whole group gathered in one loop.
    private func im2colByImageGroups(_ x: UnsafePointer<Float>, batch: Int, images: Range<Int>,
                                     into columns: UnsafeMutablePointer<Float>, rowLength: Int) {
        let windows = outHeight * outWidth, planeFloats = paddedHeight * paddedWidth, group = imagesPerGroup(images.count)
        withPlaneGroup(group) { planes, corners in
            for c in 0..<channels {
                for first in Swift.stride(from: 0, to: images.count, by: group) {
                    let count = min(group, images.count - first), entries = count * windows
                    for j in 0..<count { pad(x + (c * batch + images.lowerBound + first + j) * height * width, into: planes + j * planeFloats) }
                    let block = columns + c * kernel * kernel * rowLength + first * windows
                    for ki in 0..<kernel {
                        gather(row: ki, of: planes, corners: corners, entries: entries, into: block, rowLength: rowLength)
                    }
                }
            }
        }
    }

    /// `col2im` for short rows: each group's entries summed into zeroed planes in the order of
    /// `fold` (ki, kj, then the windows), then each plane's interior added onto `dx`.
    private func col2imByImageGroups(_ columns: UnsafePointer<Float>, batch: Int, images: Range<Int>, into dx: UnsafeMutablePointer<Float>) {
        let windows = outHeight * outWidth, planeFloats = paddedHeight * paddedWidth, group = imagesPerGroup(images.count)
        let rowLength = images.count * windows
        withPlaneGroup(group) { planes, corners in
            for c in 0..<channels {
                for first in Swift.stride(from: 0, to: images.count, by: group) {
                    let count = min(group, images.count - first), entries = count * windows
                    planes.update(repeating: 0, count: count * planeFloats)
                    let block = columns + c * kernel * kernel * rowLength + first * windows
                    for ki in 0..<kernel {
                        scatterAdd(row: ki, from: block, rowLength: rowLength, corners: corners, entries: entries, onto: planes)
                    }
                    for j in 0..<count {
                        addInterior(of: planes + j * planeFloats, onto: dx + (c * batch + images.lowerBound + first + j) * height * width)
                    }
                }
            }
        }
    }

    /// The column-matrix rows `(ki, kj)` of every `kj`, for the windows of `corners`: entry `e`
    /// of row `(ki, kj)` is the pixel at `corners[e] + ki * paddedWidth + kj`. Four windows'
    /// runs of four `kj` are four loads, transposed in registers into four rows' entries (a
    /// window's pixels along `kj` are adjacent in the plane; a row's entries are the windows);
    /// kernels of 4 to 8 (Winograd's tiles) go this way. Copies only, so the same bits as one by one.
    @inline(__always)
    private func gather(row ki: Int, of planes: UnsafePointer<Float>, corners: UnsafePointer<Int>, entries: Int,
                        into block: UnsafeMutablePointer<Float>, rowLength: Int) {
        let rows = block + ki * kernel * rowLength, top = planes + ki * paddedWidth
        var vectorEntries = 0
        if kernel >= 4 {
            vectorEntries = entries / 4 * 4
            // Runs of kj starting at 0, 4, ..., then one ending at the kernel's edge when the
            // kernel is not a multiple of 4 (it writes some rows twice, with the same values).
            let runs = (kernel + 3) / 4
            for run in 0..<runs {
                let first = min(run * 4, kernel - 4), window = top + first, out = rows + first * rowLength
                for e in Swift.stride(from: 0, to: vectorEntries, by: 4) {
                    let columns = transpose4(load4(window + corners[e]), load4(window + corners[e + 1]),
                                             load4(window + corners[e + 2]), load4(window + corners[e + 3]))
                    store4(columns.0, out + e)
                    store4(columns.1, out + rowLength + e)
                    store4(columns.2, out + 2 * rowLength + e)
                    store4(columns.3, out + 3 * rowLength + e)
                }
            }
        }
        for kj in 0..<kernel {
            let row = rows + kj * rowLength, window = top + kj
            for e in vectorEntries..<entries { row[e] = window[corners[e]] }
        }
    }

    /// `gather`'s adjoint: adds rows `(ki, kj)`' entries onto the planes, in the order of
    /// `fold` for each pixel (kj, then the windows). With a stride of at least 4, windows do not
    /// share a pixel within a run of four `kj`, so four windows' runs are added at once (rows
    /// transposed in registers), each pixel still receiving its entries in `kj` order: the same
    /// bits. Other strides, and the `kj` past the last whole run, go one entry at a time.
    @inline(__always)
    private func scatterAdd(row ki: Int, from block: UnsafePointer<Float>, rowLength: Int, corners: UnsafePointer<Int>,
                            entries: Int, onto planes: UnsafeMutablePointer<Float>) {
        let rows = block + ki * kernel * rowLength, top = planes + ki * paddedWidth
        var kj = 0
        if stride >= 4 && kernel >= 4 {
            let vectorEntries = entries / 4 * 4
            while kj + 4 <= kernel {
                let window = top + kj, source = rows + kj * rowLength
                for e in Swift.stride(from: 0, to: vectorEntries, by: 4) {
                    let runs = transpose4(load4(source + e), load4(source + rowLength + e),
                                          load4(source + 2 * rowLength + e), load4(source + 3 * rowLength + e))
                    add4(runs.0, onto: window + corners[e])
                    add4(runs.1, onto: window + corners[e + 1])
                    add4(runs.2, onto: window + corners[e + 2])
                    add4(runs.3, onto: window + corners[e + 3])
                }
                for e in vectorEntries..<entries {
                    for t in 0..<4 { window[corners[e] + t] += source[t * rowLength + e] }
                }
                kj += 4
            }
        }
        for kj in kj..<kernel {
            let row = rows + kj * rowLength, window = top + kj
            for e in 0..<entries { window[corners[e]] += row[e] }
        }
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

@inline(__always)
private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) }

@inline(__always)
private func load4(_ p: UnsafeMutablePointer<Float>) -> SIMD4<Float> { load4(UnsafePointer(p)) }

@inline(__always)
private func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self) }

@inline(__always)
private func add4(_ v: SIMD4<Float>, onto p: UnsafeMutablePointer<Float>) { store4(load4(p) + v, p) }

/// The 4x4 transpose of rows `a`, `b`, `c`, `d`: its columns.
@inline(__always)
private func transpose4(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>, _ d: SIMD4<Float>)
    -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    (SIMD4(a[0], b[0], c[0], d[0]), SIMD4(a[1], b[1], c[1], d[1]), SIMD4(a[2], b[2], c[2], d[2]), SIMD4(a[3], b[3], c[3], d[3]))
}
