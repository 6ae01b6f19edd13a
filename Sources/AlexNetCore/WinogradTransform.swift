/// The transforms of Winograd's minimal filtering algorithm F(m x m, r x r) (Lavin & Gray,
/// "Fast Algorithms for Convolutional Neural Networks", CVPR 2016), built by the Toom-Cook
/// construction from interpolation points.
///
/// In one dimension, `m` outputs of an `r`-tap correlation of an `alpha = m + r - 1` long
/// input `d` with a filter `g` are `y = Aᵀ [(G g) ⊙ (Bᵀ d)]`: `alpha` multiplications instead of
/// `m * r`. In two dimensions the transforms act on both axes of a tile: `Bᵀ d B`, `G g Gᵀ`,
/// `Aᵀ M A`. The data transforms are applied one axis at a time (`WinogradConvolution`); the
/// filter's, applied once per step to small data, as one product with `G ⊗ G`.
public struct WinogradTransform: Sendable {
    /// Outputs per tile side (m) and filter side (r).
    public let outputTile: Int
    public let kernel: Int
    /// Input tile side, `m + r - 1`.
    public var inputTile: Int { outputTile + kernel - 1 }

    /// `Bᵀ`, `[alpha, alpha]`: input tile to transformed tile (on each axis).
    let input: [Float]
    /// `G ⊗ G`, `[alpha², r²]`: filter to transformed filter.
    let filter: [Float]
    /// `Aᵀ`, `[m, alpha]`: transformed product to output tile (on each axis).
    let output: [Float]

    /// The points are 0, 1, -1, 2, -2, 1/2, -1/2, ... plus the point at infinity: the small
    /// ones first, as Lavin & Gray chose, since larger points grow the transforms' entries and
    /// with them the rounding error.
    public init(outputTile m: Int, kernel r: Int) {
        precondition(m >= 1 && r >= 1 && m + r - 1 <= 8, "F(\(m),\(r)) needs more interpolation points than are listed")
        outputTile = m
        kernel = r
        let alpha = m + r - 1
        let points = Array([0.0, 1, -1, 2, -2, 0.5, -0.5].prefix(alpha - 1))
        let (at, g, bt) = Self.oneDimensional(points: points, m: m, r: r)
        input = bt.map { Float($0) }
        filter = Self.kronecker(g, rows: alpha, columns: r)
        output = at.map { Float($0) }
    }

    /// `Aᵀ [m, alpha]`, `G [alpha, r]`, `Bᵀ [alpha, alpha]`, row-major, from `alpha - 1` finite points.
    static func oneDimensional(points a: [Double], m: Int, r: Int) -> (at: [Double], g: [Double], bt: [Double]) {
        let alpha = a.count + 1, n = a.count
        // f_i = prod_{k != i} (a_i - a_k): the Lagrange denominators; 1 for the point at infinity.
        let lagrange = (0..<n).map { i in (0..<n).reduce(1.0) { $0 * ($1 == i ? 1 : a[i] - a[$1]) } }
        var f = lagrange + [1]
        if f[0] < 0 { f[0] = -f[0] }  // keeps Bᵀ's first row 1, 0, -1, ... as in the paper
        // Vandermonde rows a_i^j, and a last row picking the highest coefficient (infinity).
        func vandermonde(_ columns: Int) -> [Double] {
            (0..<alpha).flatMap { i in (0..<columns).map { j in i == alpha - 1 ? (j == columns - 1 ? 1 : 0) : pow(a[i], j) } }
        }
        let aMatrix = vandermonde(m), gMatrix = vandermonde(r)
        let at = (0..<m).flatMap { i in (0..<alpha).map { j in aMatrix[j * m + i] } }
        let g = (0..<alpha).flatMap { i in (0..<r).map { j in gMatrix[i * r + j] / f[i] } }
        // B: rows i < n are L_i(x) * (x^0..x^{n-1}) reduced by prod(x - a_k), i.e. Lagrange
        // coefficients of the basis polynomial, with the column for x^n holding -a_i^n terms.
        var b = [Double](repeating: 0, count: alpha * alpha)
        for row in 0..<n {
            for i in 0..<n {
                let basis = Self.coefficients(of: (0..<n).filter { $0 != i }.map { a[$0] })
                let l = basis[row] / lagrange[i]  // L[row][i]
                b[row * alpha + i] += l
                b[row * alpha + n] -= l * pow(a[i], n)
            }
        }
        b[(alpha - 1) * alpha + alpha - 1] = 1
        let bt = (0..<alpha).flatMap { i in (0..<alpha).map { j in f[i] * b[j * alpha + i] } }
        return (at, g, bt)
    }

    /// Coefficients (constant first) of `prod (x - root)`.
    static func coefficients(of roots: [Double]) -> [Double] {
        var c = [1.0]
        for root in roots {
            var next = [Double](repeating: 0, count: c.count + 1)
            for (k, value) in c.enumerated() {
                next[k + 1] += value
                next[k] -= root * value
            }
            c = next
        }
        return c
    }

    /// `M ⊗ M` for a row-major `[rows, columns]` matrix, as Float.
    static func kronecker(_ matrix: [Double], rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: rows * rows * columns * columns)
        for p in 0..<rows { for q in 0..<rows { for i in 0..<columns { for j in 0..<columns {
            result[(p * rows + q) * columns * columns + i * columns + j] = Float(matrix[p * columns + i] * matrix[q * columns + j])
        } } } }
        return result
    }
}

private func pow(_ x: Double, _ n: Int) -> Double { (0..<n).reduce(1.0) { p, _ in p * x } }
