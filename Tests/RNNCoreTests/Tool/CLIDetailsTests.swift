// The tool's own formatting: the live progress line fitted to the terminal, the learning-curve plot's ticks,
// labels and reference lines, and the shell completion script.

import Foundation
import RNNCore
import Testing
@testable import rnncore

@Suite("Tool: progress line, plot, completions")
struct CLIDetailsTests {
    static let label = "epoch 3/40"
    static let detail = "ppl 123.45  12345 tok/s  ETA 3m05s"

    @Test("The progress line never exceeds width - 1 and keeps the label and percentage", arguments: [20, 40, 60, 120])
    func progressLineFits(columns: Int) {
        for fraction in [0, 0.005, 0.42, 1] {
            let line = ProgressDisplay.line(fraction: fraction, label: Self.label, detail: Self.detail, columns: columns)
            #expect(line.count <= columns - 1, "\(columns) columns: \"\(line)\" has \(line.count) characters")
            #expect(line.hasPrefix(Self.label), "\"\(line)\"")
            #expect(line.contains(ProgressDisplay.percent(fraction)), "\"\(line)\"")
            #expect(!line.contains("\n") && !line.contains("\r"))
        }
    }

    @Test("The bar and then the detail's fields give way as the terminal narrows")
    func progressLineShrinks() {
        func line(_ columns: Int) -> String {
            ProgressDisplay.line(fraction: 0.5, label: Self.label, detail: Self.detail, columns: columns)
        }
        // 120 columns: the full bar and the whole detail.
        #expect(line(120) == Self.label + " [" + String(repeating: "█", count: 15) + String(repeating: "·", count: 15)
                + "]  50% " + Self.detail)
        // 60: a shorter bar, the whole detail.
        #expect(line(60).hasSuffix(Self.detail) && line(60).contains("[") && line(60).count == 59)
        // 40: the detail loses trailing fields, but keeps whole ones.
        let narrow = line(40)
        #expect(narrow.contains("[") && narrow.hasSuffix("ppl 123.45") && !narrow.contains("ETA"), "\"\(narrow)\"")
        // 20: no room for a bar.
        #expect(line(20) == "epoch 3/40  50%", "\"\(line(20))\"")
        // Absurdly narrow: cut, never longer.
        #expect(line(5) == "epoc")
    }

    @Test("Nice ticks are 1, 2 or 5 × 10^k and lie inside the range", arguments: [
        (21.4, 24.8), (16.4, 90.0), (30.0, 1200.0), (1.5, 40_000.0), (100.0, 100.5), (5.0, 1e9),
    ])
    func niceTicks(range: (Double, Double)) {
        let ticks = LearningCurvePlot.niceTicks(from: range.0, to: range.1)
        #expect(ticks.count >= 2 && ticks.count <= 8, "\(range): \(ticks)")
        for tick in ticks {
            #expect(tick >= range.0 * (1 - 1e-9) && tick <= range.1 * (1 + 1e-9), "\(tick) outside \(range)")
            // tick = m × 10^k × n for a step m × 10^k: its leading digits are a multiple of 1, 2 or 5 steps;
            // checked through the label, which needs at most 3 decimals and no odd ones.
            let label = LearningCurvePlot.tickLabel(tick)
            #expect(abs(Double(label)! - tick) <= 1e-9 * tick, "\(tick) labelled \(label)")
        }
        #expect(LearningCurvePlot.niceTicks(from: 21.4, to: 24.8) == [22, 23, 24])
        #expect(LearningCurvePlot.niceTicks(from: 30, to: 1200) == [50, 100, 200, 500, 1000])
        #expect(LearningCurvePlot.niceTicks(from: 1.5, to: 40_000) == [10, 100, 1000, 10_000])
        #expect(LearningCurvePlot.niceTicks(from: 5, to: 1e9) == [10, 1000, 100_000, 10_000_000, 1_000_000_000])
        #expect(LearningCurvePlot.niceTicks(from: 100, to: 100.5) == [100, 100.1, 100.2, 100.3, 100.4, 100.5])
        #expect(LearningCurvePlot.tickLabel(100.1) == "100.1" && LearningCurvePlot.tickLabel(20) == "20")
    }

    @Test("Epoch labels are thinned to a nice step that leaves each label its width")
    func labelThinning() {
        #expect(LearningCurvePlot.labelStep(epochs: 3, width: 550, labelWidth: 19) == 1)
        #expect(LearningCurvePlot.labelStep(epochs: 40, width: 550, labelWidth: 26) == 2)
        let step = LearningCurvePlot.labelStep(epochs: 100, width: 550, labelWidth: 33)
        #expect(step == 10)
        let labelled = LearningCurvePlot.labelledEpochs(Array(1...100), step: step, minimumGap: 33 * 99 / 550)
        #expect(labelled == [1] + Array(stride(from: 10, through: 100, by: 10)))
        // A first label that would touch the next one is left out.
        #expect(LearningCurvePlot.labelledEpochs(Array(7...100), step: 10, minimumGap: 6) == Array(stride(from: 10, through: 100, by: 10)))
        #expect(LearningCurvePlot.labelledEpochs([1, 2, 3], step: 1, minimumGap: 0.1) == [1, 2, 3])
    }

    @Test("The plot names the model and draws labelled reference lines; 100 epochs get 11 labels")
    func plotContents() throws {
        let reports = try (1...100).map { epoch in
            try JSONDecoder().decode(EpochReport.self, from: Data("""
                {"epoch": \(epoch), "trainPerplexity": \(300.0 / Double(epoch) + 40), "validPerplexity": \(250.0 / Double(epoch) + 45),
                 "learningRate": 1, "tokensPerSecond": 1000, "seconds": 1, "skippedUpdates": 0}
                """.utf8))
        }
        let model = ModelSettings(cell: .lstm, layers: 2, embeddingSize: 32, hiddenSize: 64, dropout: 0, input: .embedding)
        let title = LearningCurvePlot.title(model, vocabularySize: 251)
        #expect(title.contains("2-layer LSTM") && title.contains("V=251") && title.contains("D=32") && title.contains("H=64"))
        let svg = LearningCurvePlot.svg(reports, title: title, subtitle: "on a <test> & corpus",
                                        references: LearningCurvePlot.references(test: 47.25, truth: 16.41))
        #expect(svg.contains(">2-layer LSTM language model, V=251 D=32 H=64</text>"))
        #expect(svg.contains("on a &lt;test&gt; &amp; corpus"))
        #expect(svg.contains(">test 47.25</text>") && svg.contains(">true perplexity 16.41</text>"))
        #expect(svg.components(separatedBy: "stroke-dasharray").count - 1 == 2)
        let epochLabels = svg.components(separatedBy: "text-anchor=\"middle\">").dropFirst()
            .compactMap { Int($0.prefix { $0 != "<" }) }
        #expect(epochLabels == [1] + Array(stride(from: 10, through: 100, by: 10)), "\(epochLabels)")
        #expect(!svg.contains("text-anchor=\"end\">21.4<"))
        // Without a test text or a true perplexity: no reference lines.
        #expect(!LearningCurvePlot.svg(reports, title: title).contains("stroke-dasharray"))
    }

    @Test("The bash completion script completes file paths for the options that take one")
    func completionScript() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let result = try ToolTestRunner.run(tool, ["--generate-completion-script", "bash"], in: scratch.url)
        try #require(result.exited && result.status == 0, "\(result)")
        let script = result.stdout
        for option in ["--train", "--valid", "--test", "--model", "--out", "--resume", "--checkpoint", "--plot", "--pytorch"] {
            #expect(script.contains(option), "\(option) is not in the completion script")
        }
        #expect(Self.fileCompletedOptions(script).isSuperset(of: ["--train", "--valid", "--test", "--out", "--plot",
                                                                   "--checkpoint", "--resume", "--model", "--data",
                                                                   "--pytorch"]),
                "file-completed: \(Self.fileCompletedOptions(script).sorted())")
        #expect(!Self.fileCompletedOptions(script).contains("--seed"))
    }

    /// The options whose value the bash script completes with `compgen -f` (file names): a case "'--OPT')" whose
    /// next line is `__rnncore_add_completions -f`.
    static func fileCompletedOptions(_ script: String) -> Set<String> {
        let lines = script.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        var options: Set<String> = []
        for (line, next) in zip(lines, lines.dropFirst())
        where line.hasPrefix("'--") && line.hasSuffix("')") && next.hasSuffix("_add_completions -f") {
            options.insert(String(line.dropFirst().dropLast(2)))
        }
        return options
    }
}
