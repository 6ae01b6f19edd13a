import Foundation

/// Line charts as SVG, in the manner of d2l's training curves: one panel per quantity,
/// one coloured line per series, a shared legend. Viewable in any browser.
public struct LinePlot {
    public struct Panel {
        public var title: String
        public var series: [(name: String, points: [(Double, Double)])]
        public init(title: String, series: [(name: String, points: [(Double, Double)])]) {
            self.title = title
            self.series = series
        }
    }

    public var panels: [Panel]
    public var xLabel: String
    static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]

    public init(panels: [Panel], xLabel: String) {
        self.panels = panels
        self.xLabel = xLabel
    }

    /// Round numbers for axis ticks covering `low...high`.
    static func ticks(_ low: Double, _ high: Double) -> [Double] {
        let span = max(high - low, 1e-9)
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var values: [Double] = []
        var v = ceil(low / step) * step
        while v <= high + step * 1e-6 {
            values.append(v)
            v += step
        }
        return values
    }

    public var svg: String {
        let (panelWidth, height, margin) = (420.0, 300.0, 50.0)
        let width = panelWidth * Double(panels.count)
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height + 40))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"]
        func f(_ x: Double) -> String { String(format: "%.1f", x) }
        for (p, panel) in panels.enumerated() {
            let left = Double(p) * panelWidth + margin, right = Double(p + 1) * panelWidth - 15
            let top = 30.0, bottom = height - 35
            let points = panel.series.flatMap(\.points)
            let xs = points.map(\.0), ys = points.map(\.1)
            let (x0, x1) = (xs.min() ?? 0, max(xs.max() ?? 1, (xs.min() ?? 0) + 1))
            var (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
            if y1 - y0 < 1e-9 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
            let pad = (y1 - y0) * 0.05
            (y0, y1) = (y0 - pad, y1 + pad)
            let sx = { (x: Double) in left + (x - x0) / (x1 - x0) * (right - left) }
            let sy = { (y: Double) in bottom - (y - y0) / (y1 - y0) * (bottom - top) }
            out.append("<text x=\"\(f((left + right) / 2))\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">\(panel.title)</text>")
            for t in Self.ticks(y0, y1) {
                out.append("<line x1=\"\(f(left))\" x2=\"\(f(right))\" y1=\"\(f(sy(t)))\" y2=\"\(f(sy(t)))\" stroke=\"#ddd\"/>")
                out.append("<text x=\"\(f(left - 5))\" y=\"\(f(sy(t) + 4))\" text-anchor=\"end\">\(String(format: "%g", (t * 1e6).rounded() / 1e6))</text>")
            }
            for t in Self.ticks(x0, x1) where t == t.rounded() {
                out.append("<line x1=\"\(f(sx(t)))\" x2=\"\(f(sx(t)))\" y1=\"\(f(top))\" y2=\"\(f(bottom))\" stroke=\"#eee\"/>")
                out.append("<text x=\"\(f(sx(t)))\" y=\"\(f(bottom + 15))\" text-anchor=\"middle\">\(Int(t))</text>")
            }
            out.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#333\"/>")
            out.append("<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 30))\" text-anchor=\"middle\">\(xLabel)</text>")
            for (s, series) in panel.series.enumerated() where !series.points.isEmpty {
                let color = Self.colors[s % Self.colors.count]
                let path = series.points.map { "\(f(sx($0.0))),\(f(sy($0.1)))" }.joined(separator: " ")
                out.append("<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>")
                for point in series.points {
                    out.append("<circle cx=\"\(f(sx(point.0)))\" cy=\"\(f(sy(point.1)))\" r=\"3\" fill=\"\(color)\"/>")
                }
            }
        }
        let names = panels.first?.series.map(\.name) ?? []
        for (s, name) in names.enumerated() {
            let x = margin + Double(s) * 130
            out.append("<line x1=\"\(f(x))\" x2=\"\(f(x + 20))\" y1=\"\(f(height + 20))\" y2=\"\(f(height + 20))\" stroke=\"\(Self.colors[s % Self.colors.count])\" stroke-width=\"3\"/>")
            out.append("<text x=\"\(f(x + 25))\" y=\"\(f(height + 24))\">\(name)</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
