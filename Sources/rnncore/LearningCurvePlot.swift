import Foundation
import RNNCore

/// An SVG line chart of training and validation perplexity per epoch, with labelled horizontal reference lines
/// (the test perplexity, the true perplexity of the built-in corpus).
enum LearningCurvePlot {
    /// A labelled horizontal line across the chart.
    struct Reference {
        var label: String
        var value: Double
        var color: String
    }

    /// The references of a run: its test perplexity and, for the built-in corpus, the source's true perplexity.
    static func references(test: Double?, truth: Double?) -> [Reference] {
        var lines: [Reference] = []
        if let test { lines.append(Reference(label: String(format: "test %.2f", test), value: test, color: "#2ca02c")) }
        if let truth { lines.append(Reference(label: String(format: "true perplexity %.2f", truth), value: truth, color: "#7f7f7f")) }
        return lines
    }

    /// "2-layer LSTM, V=10000 D=650 H=650, dropout 0.5": the model the chart is of.
    static func title(_ model: ModelSettings, vocabularySize: Int) -> String {
        "\(model.layers)-layer \(model.cell.specification.displayName) language model, V=\(vocabularySize) "
            + (model.input == .oneHot ? "one-hot inputs" : "D=\(model.embeddingSize)") + " H=\(model.hiddenSize)"
            + (model.dropout > 0 ? ", dropout \(model.dropout)" : "")
            + (model.softmax == .adaptive ? ", adaptive softmax" : model.tiedWeights ? ", tied" : "")
    }

    static func svg(_ reports: [EpochReport], title: String, subtitle: String = "", references: [Reference] = []) -> String {
        let (width, height) = (640.0, 400.0)
        let (left, right, top, bottom) = (70.0, 20.0, subtitle.isEmpty ? 40.0 : 56.0, 50.0)
        let series: [(name: String, color: String, values: [Double?])] = [
            ("train", "#1f77b4", reports.map { $0.trainPerplexity }),
            ("valid", "#d62728", reports.map { $0.validPerplexity }),
        ]
        let references = references.filter { $0.value.isFinite && $0.value > 0 }
        let all = (series.flatMap { $0.values.compactMap { $0 } } + references.map(\.value)).filter { $0.isFinite && $0 > 0 }
        // Log scale: perplexities span orders of magnitude early in training. A little room above and below.
        let lo = log10(all.min() ?? 1), hi = log10(all.max() ?? 10)
        let pad = max((hi - lo) * 0.04, 0.02)
        let (yMin, yMax) = (lo - pad, hi + pad)
        let epochs = reports.map(\.epoch)
        let (firstEpoch, lastEpoch) = (epochs.first ?? 1, max(epochs.last ?? 2, (epochs.first ?? 1) + 1))
        let plotWidth = width - left - right
        func x(_ epoch: Int) -> Double { left + plotWidth * Double(epoch - firstEpoch) / Double(lastEpoch - firstEpoch) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - (log10(v) - yMin) / (yMax - yMin)) }

        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        if !subtitle.isEmpty {
            out += "<text x=\"\(width / 2)" + "\" y=\"40\" text-anchor=\"middle\" fill=\"#555\">\(escape(subtitle))</text>\n"
        }
        out += """
        <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
        <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
        <text x="\(width / 2)" y="\(height - 12)" text-anchor="middle">epoch</text>
        <text x="16" y="\(height / 2)" text-anchor="middle" transform="rotate(-90 16 \(height / 2))">perplexity (log scale)</text>

        """
        let ticks = niceTicks(from: pow(10, yMin), to: pow(10, yMax))
        for v in ticks {
            out += "<line x1=\"\(left - 4)\" y1=\"\(y(v))\" x2=\"\(width - right)\" y2=\"\(y(v))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(tickLabel(v))</text>\n"
        }
        // Epoch labels: a nice step so that the widest label fits with room to spare.
        let labelWidth = Double(String(lastEpoch).count) * 7 + 12
        let step = labelStep(epochs: lastEpoch - firstEpoch + 1, width: plotWidth, labelWidth: labelWidth)
        for epoch in labelledEpochs(epochs, step: step, minimumGap: labelWidth * Double(lastEpoch - firstEpoch) / plotWidth) {
            out += "<line x1=\"\(x(epoch))\" y1=\"\(height - bottom)\" x2=\"\(x(epoch))\" y2=\"\(height - bottom + 4)\" stroke=\"black\"/>"
            out += "<text x=\"\(x(epoch))\" y=\"\(height - bottom + 17)\" text-anchor=\"middle\">\(epoch)</text>\n"
        }
        // Reference lines, labelled at the left end (where the curves are still high); a label too close to the
        // one above it goes below its line.
        var lastLabelY = -Double.infinity
        for reference in references.sorted(by: { $0.value > $1.value }) {
            let ry = y(reference.value)
            out += "<line x1=\"\(left)\" y1=\"\(ry)\" x2=\"\(width - right)\" y2=\"\(ry)\" stroke=\"\(reference.color)\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
            var labelY = ry - 5
            if labelY - lastLabelY < 14 { labelY = ry + 15 }
            lastLabelY = labelY
            out += "<text x=\"\(left + 6)\" y=\"\(labelY)\" fill=\"\(reference.color)\">\(escape(reference.label))</text>\n"
        }
        // Dots only while they stay apart.
        let dots = plotWidth / Double(max(lastEpoch - firstEpoch, 1)) >= 9
        for (index, s) in series.enumerated() {
            let points = zip(epochs, s.values).compactMap { e, v in v.flatMap { $0.isFinite && $0 > 0 ? (e, $0) : nil } }
            guard !points.isEmpty else { continue }
            let path = points.map { "\(x($0.0)),\(y($0.1))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            if dots || points.count == 1 {
                for (e, v) in points { out += "<circle cx=\"\(x(e))\" cy=\"\(y(v))\" r=\"3\" fill=\"\(s.color)\"/>\n" }
            }
            let ly = top + 10 + Double(index) * 18
            out += "<rect x=\"\(width - right - 90)\" y=\"\(ly - 9)\" width=\"12\" height=\"12\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(width - right - 72)\" y=\"\(ly + 1)\">\(s.name)</text>\n"
        }
        return out + "</svg>\n"
    }

    /// Tick values of a log axis over [lo, hi], all of the form 1, 2 or 5 × 10^k: the 1-2-5 sequence when the
    /// range holds at least 3 of its values (only the powers of ten when that gives more than `maximumCount`),
    /// else the multiples of a 1-2-5 step inside the range (at least 2, at most `maximumCount` of them).
    static func niceTicks(from lo: Double, to hi: Double, maximumCount: Int = 8) -> [Double] {
        guard lo.isFinite, hi.isFinite, lo > 0, hi >= lo else { return [] }
        var sequence: [Double] = []
        var decade = pow(10, floor(log10(lo)))
        while decade <= hi * 1.000001 {
            for m in [1.0, 2, 5] where m * decade >= lo * 0.999999 && m * decade <= hi * 1.000001 {
                sequence.append(m * decade)
            }
            decade *= 10
        }
        if sequence.count > maximumCount {
            let powers = sequence.filter { abs(log10($0) - log10($0).rounded()) < 1e-9 }
            // Every power of ten, or every second, third, … when even those are too many.
            let stride = (powers.count + maximumCount - 1) / maximumCount
            if powers.count >= 2 { return powers.enumerated().filter { $0.offset % stride == 0 }.map(\.element) }
        }
        if sequence.count >= 3 && sequence.count <= maximumCount { return sequence }
        // Narrow range: linear steps of 1, 2 or 5 × 10^k, at most 6 of them (a log axis this narrow is nearly
        // linear). n × m / 10^-k rather than n × (m × 10^k), so that 100.1 is 100.1 and not 100.10000000000001.
        let linearMaximum = min(maximumCount, 6)
        for exponent in stride(from: floor(log10(hi - lo + .leastNormalMagnitude)) - 2, through: log10(hi) + 1, by: 1) {
            for m in [1.0, 2, 5] {
                let step = m * pow(10, exponent)
                func value(_ n: Double) -> Double { exponent < 0 ? n * m / pow(10, -exponent) : n * step }
                let first = (lo / step).rounded(.up), last = (hi / step).rounded(.down)
                let count = Int(last - first) + 1
                // The first step (from the finest) with few enough ticks; the counts only fall from here.
                if count <= linearMaximum {
                    return count >= 2 ? (0..<count).map { value(first + Double($0)) } : sequence
                }
            }
        }
        return sequence
    }

    /// A tick value with as many decimals as it needs (no more than 3): "20", "2.5", "0.05".
    static func tickLabel(_ value: Double) -> String {
        for decimals in 0...3 {
            let text = String(format: "%.\(decimals)f", value)
            if abs((Double(text) ?? value) - value) <= 1e-9 * max(abs(value), 1) { return text }
        }
        return String(format: "%.3g", value)
    }

    /// The step between labelled epochs: the smallest of 1, 2, 5, 10, 20, 50, … that leaves each label at least
    /// `labelWidth` of the `width` the axis has for `epochs` epochs.
    static func labelStep(epochs: Int, width: Double, labelWidth: Double) -> Int {
        guard epochs > 1 else { return 1 }
        let spacing = width / Double(epochs - 1)
        var decade = 1
        while true {
            for m in [1, 2, 5] where spacing * Double(m * decade) >= labelWidth { return m * decade }
            decade *= 10
        }
    }

    /// The epochs that get a label: the multiples of `step`, and the first epoch too unless it would come closer
    /// than `minimumGap` epochs to the next label.
    static func labelledEpochs(_ epochs: [Int], step: Int, minimumGap: Double) -> [Int] {
        var labelled = epochs.filter { $0 % step == 0 }
        if let first = epochs.first, labelled.first != first {
            if let next = labelled.first, Double(next - first) < minimumGap {
                if step > 1 { return labelled }
            }
            labelled.insert(first, at: 0)
        }
        return labelled
    }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
