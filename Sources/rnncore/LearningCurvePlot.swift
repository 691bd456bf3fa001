import Foundation
import RNNCore

/// An SVG line chart of training and validation perplexity per epoch.
enum LearningCurvePlot {
    static func svg(_ reports: [EpochReport], title: String) -> String {
        let (width, height) = (640.0, 400.0)
        let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0)
        let series: [(name: String, color: String, values: [Double?])] = [
            ("train", "#1f77b4", reports.map { $0.trainPerplexity }),
            ("valid", "#d62728", reports.map { $0.validPerplexity }),
        ]
        let all = series.flatMap { $0.values.compactMap { $0 } }.filter { $0.isFinite && $0 > 0 }
        // Log scale: perplexities span orders of magnitude early in training.
        let lo = log10(all.min() ?? 1), hi = log10(all.max() ?? 10)
        let (yMin, yMax) = hi - lo < 1e-9 ? (lo - 0.5, hi + 0.5) : (lo, hi)
        let epochs = max(reports.count, 2)
        func x(_ i: Int) -> Double { left + (width - left - right) * Double(i) / Double(epochs - 1) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - (log10(v) - yMin) / (yMax - yMin)) }

        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>
        <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
        <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
        <text x="\(width / 2)" y="\(height - 12)" text-anchor="middle">epoch</text>
        <text x="16" y="\(height / 2)" text-anchor="middle" transform="rotate(-90 16 \(height / 2))">perplexity (log scale)</text>

        """
        for k in 0...4 {
            let v = pow(10, yMin + (yMax - yMin) * Double(k) / 4)
            out += "<line x1=\"\(left - 4)\" y1=\"\(y(v))\" x2=\"\(width - right)\" y2=\"\(y(v))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.1f", v))</text>\n"
        }
        for (i, report) in reports.enumerated() {
            out += "<text x=\"\(x(i))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(report.epoch)</text>\n"
        }
        for (index, s) in series.enumerated() {
            let points = s.values.enumerated().compactMap { i, v in v.flatMap { $0.isFinite && $0 > 0 ? (i, $0) : nil } }
            guard !points.isEmpty else { continue }
            let path = points.map { "\(x($0.0)),\(y($0.1))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for (i, v) in points { out += "<circle cx=\"\(x(i))\" cy=\"\(y(v))\" r=\"3\" fill=\"\(s.color)\"/>\n" }
            let ly = top + 10 + Double(index) * 18
            out += "<rect x=\"\(width - right - 90)\" y=\"\(ly - 9)\" width=\"12\" height=\"12\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(width - right - 72)\" y=\"\(ly + 1)\">\(s.name)</text>\n"
        }
        return out + "</svg>\n"
    }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
