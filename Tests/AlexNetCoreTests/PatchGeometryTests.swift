import AlexNetCore
import XCTest

/// im2col and col2im (which go through a zero-bordered copy of each plane) against their
/// definitions, written out pixel by pixel. Both are exact: im2col only copies, and col2im adds
/// each pixel's entries in the definition's order onto a zeroed gradient, so the results must
/// be the same bits.
final class PatchGeometryTests: XCTestCase {
    /// (height, width, kernel, stride, padding, tiles): odd sizes, padding 0/1/2, strides 1, 2
    /// and 4, windows that stop short of the last rows (stride 4), and, `tiles`, Winograd's tile
    /// grids (kernel alpha, stride m, as many tiles as cover the output) whose ragged last
    /// tiles reach past the padding. Strided rows of fewer than `PatchGeometry.shortRow` (8)
    /// windows go a group of images at a time through a table of corners (as many images as fit
    /// in 16 Ki floats), the others row by row: both kinds are here, overlapping and not.
    let shapes: [(Int, Int, Int, Int, Int, Bool)] = [
        (7, 7, 3, 1, 1, false), (15, 13, 5, 1, 2, false), (9, 11, 3, 1, 0, false), (23, 21, 11, 4, 0, false),
        (19, 17, 5, 4, 2, false), (7, 9, 4, 2, 0, false), (5, 5, 1, 1, 0, false),
        (7, 7, 6, 4, 1, true), (15, 15, 8, 4, 2, true), (13, 10, 4, 2, 1, true),
        (13, 10, 4, 4, 0, true), (7, 7, 2, 2, 0, true), (15, 15, 4, 4, 0, true),  // output tiles: no overlap, no padding
        (13, 40, 5, 4, 2, false), (9, 37, 6, 4, 1, true), (19, 33, 4, 4, 0, true),  // rows of 9 or 10 windows, strided
        (255, 23, 11, 4, 0, false),  // short rows, planes so tall that the images take more than one group
    ]

    func geometry(_ s: (Int, Int, Int, Int, Int, Bool), channels: Int) -> PatchGeometry {
        let (h, w, k, stride, p, tiles) = s
        func outputs(_ side: Int) -> Int {
            tiles ? (side + 2 * p - k + 2 * stride - 1) / stride : convolutionOutputSize(input: side, kernel: k, stride: stride, padding: p)
        }
        return PatchGeometry(channels: channels, height: h, width: w, kernel: k, stride: stride, padding: p,
                             outHeight: outputs(h), outWidth: outputs(w))
    }

    /// Column-matrix index and input index (nil in the padding) of every entry, in the order a
    /// direct walk visits them: channel, image, ki, kj, oh, ow.
    func entries(_ g: PatchGeometry, batch: Int, images: Range<Int>, rowLength: Int) -> [(column: Int, pixel: Int?)] {
        var result: [(Int, Int?)] = []
        for c in 0..<g.channels { for (i, b) in images.enumerated() { for ki in 0..<g.kernel { for kj in 0..<g.kernel {
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                let column = ((c * g.kernel + ki) * g.kernel + kj) * rowLength + (i * g.outHeight + oh) * g.outWidth + ow
                let ih = oh * g.stride - g.padding + ki, iw = ow * g.stride - g.padding + kj
                let inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width
                result.append((column, inside ? ((c * batch + b) * g.height + ih) * g.width + iw : nil))
            } }
        } } } }
        return result
    }

    func testIm2colCopiesEveryWindowExactly() {
        let batch = 5, images = 1..<4
        for shape in shapes {
            let g = geometry(shape, channels: 3)
            let x = randomValues(3 * batch * g.height * g.width, seed: 51)
            let packed = images.count * g.outHeight * g.outWidth, rowLength = packed + 7  // rows inside a wider matrix
            var expected = [Float](repeating: .nan, count: 3 * g.kernel * g.kernel * rowLength)
            for (column, pixel) in entries(g, batch: batch, images: images, rowLength: rowLength) { expected[column] = pixel.map { x[$0] } ?? 0 }
            let input = Buffer(x), columns = Buffer(count: expected.count)
            columns.pointer.update(repeating: .nan, count: expected.count)
            g.im2col(input.pointer, batch: batch, images: images, into: columns.pointer, rowLength: rowLength)
            withExtendedLifetime(input) {}
            // NaN marks the gaps between rows, which im2col must leave alone: compare bit patterns.
            XCTAssertEqual(columns.array.map(\.bitPattern), expected.map(\.bitPattern), "im2col \(shape)")
        }
    }

    /// Random entries onto a zeroed gradient (the same bits as the definition's sums), and
    /// whole numbers onto a gradient of whole numbers (exact in any order), so that col2im
    /// must add onto what `dx` holds rather than overwrite it.
    func testCol2imAddsEveryEntryBackExactly() {
        let batch = 4, images = 2..<4
        for shape in shapes {
            let g = geometry(shape, channels: 2)
            let packed = images.count * g.outHeight * g.outWidth, count = 2 * batch * g.height * g.width
            let random = randomValues(2 * g.kernel * g.kernel * packed, seed: 52)
            for (columns, start) in [(random, [Float](repeating: 0, count: count)),
                                     (random.map { ($0 * 8).rounded() + 0 }, randomValues(count, seed: 53).map { ($0 * 8).rounded() + 0 })] {
                var expected = start
                for (column, pixel) in entries(g, batch: batch, images: images, rowLength: packed) {
                    if let pixel { expected[pixel] += columns[column] }
                }
                let source = Buffer(columns), dx = Buffer(start)
                g.col2im(source.pointer, batch: batch, images: images, into: dx.pointer)
                withExtendedLifetime(source) {}
                XCTAssertEqual(dx.array.map(\.bitPattern), expected.map(\.bitPattern), "col2im \(shape)")
            }
        }
    }
}
