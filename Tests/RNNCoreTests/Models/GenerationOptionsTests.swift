// Top-p, repetition penalty, stop strings, the generation session and the AsyncSequence of tokens.

import Foundation
import RNNCore
import Testing

@Suite("Models: generation options, session and token stream")
struct GenerationOptionsTests {
    /// Logits whose softmax is exactly proportional to `probabilities` (up to rounding): ln p.
    static func logits(_ probabilities: [Double]) -> [Float] { probabilities.map { Float(log($0)) } }

    @Test("Top-p keeps the smallest set of most likely tokens whose probability reaches p, renormalised")
    func topPKeepsSmallestSet() throws {
        // Masses 0.5, 0.3, 0.15, 0.05 (ids 2, 0, 3, 1); p values kept away from the cumulative sums 0.5, 0.8, 0.95.
        let row = Self.logits([0.3, 0.05, 0.5, 0.15])
        let cases: [(p: Double, kept: [Int32])] = [
            (0.2, [2]), (0.45, [2]), (0.7, [2, 0]), (0.9, [2, 0, 3]), (0.99, [2, 0, 3, 1]), (1, [2, 0, 3, 1]),
        ]
        for (p, kept) in cases {
            let distribution = SamplingOptions(topP: p).distribution(logits: row)
            #expect(distribution.map(\.id) == kept, "p \(p)")
            #expect(abs(distribution.reduce(0) { $0 + $1.probability } - 1) < 1e-12, "p \(p)")
        }
        let two = SamplingOptions(topP: 0.7).distribution(logits: row)
        #expect(abs(two[0].probability - 0.5 / 0.8) < 1e-6 && abs(two[1].probability - 0.3 / 0.8) < 1e-6)
        // Top-k first, then top-p over the renormalised remainder: 0.5 / 0.8 < 0.7 keeps both of the top 2.
        #expect(SamplingOptions(topK: 2, topP: 0.7).distribution(logits: row).map(\.id) == [2, 0])
        #expect(SamplingOptions(topK: 2, topP: 0.6).distribution(logits: row).map(\.id) == [2])
        // Temperature 0 leaves the argmax whatever p is.
        #expect(SamplingOptions(temperature: 0, topP: 0.99).distribution(logits: row).map(\.id) == [2])
    }

    @Test("Generation with top-p draws only ids of each step's nucleus")
    func topPGeneration() throws {
        let (model, _) = try ModelIOFixture.trainedModel(layers: 1, epochs: 2)
        let options = SamplingOptions(temperature: 1.5, topP: 0.5, seed: 4)
        let ids = try model.generate(prompt: [0], count: 60, options: options)
        let rows = try GenerationTests.stepRows(of: model, prompt: [0], generated: ids)
        for (step, (id, row)) in zip(ids, rows).enumerated() {
            let nucleus = Set(options.distribution(logits: row).map(\.id))
            #expect(nucleus.contains(id), "step \(step): \(id) outside \(nucleus.sorted())")
        }
    }

    @Test("The repetition penalty divides positive and multiplies non-positive logits of the window's ids, once each")
    func repetitionPenalty() throws {
        let row: [Float] = [2, -1, 0, 3, 0.5]
        let options = SamplingOptions(repetitionPenalty: 2, repetitionWindow: nil)
        #expect(options.penalizedLogits(row, recent: [0, 1, 2, 0, 0]) == [1, -2, 0, 3, 0.5])
        // The window counts the latest tokens only: with 2, ids 3 and 4.
        let windowed = SamplingOptions(repetitionPenalty: 2, repetitionWindow: 2)
        #expect(windowed.penalizedLogits(row, recent: [0, 1, 3, 4]) == [2, -1, 0, 1.5, 0.25])
        #expect(windowed.penalizedIDs(recent: [0, 1, 3, 4]) == [3, 4])
        #expect(SamplingOptions(repetitionPenalty: 2, repetitionWindow: 0).penalizedIDs(recent: [0, 1]) == [])
        // Penalty 1 changes nothing; an uneven penalty is z / penalty in Double, rounded once.
        #expect(SamplingOptions().penalizedLogits(row, recent: [0, 1, 2, 3, 4]) == row)
        let odd = SamplingOptions(repetitionPenalty: 1.3).penalizedLogits(row, recent: [3])
        #expect(odd[3] == Float(3.0 / 1.3))
        // Greedy decoding moves to the next best once the best was seen: 3 → 1.5 < 2.
        let greedy = SamplingOptions(temperature: 0, repetitionPenalty: 2)
        #expect(greedy.distribution(logits: row, recent: []).map(\.id) == [3])
        #expect(greedy.distribution(logits: row, recent: [3]).map(\.id) == [0])
    }

    @Test("A strong penalty on a greedy model avoids repeating a token inside the window")
    func penaltyAvoidsRepeats() throws {
        let (model, _) = try ModelIOFixture.trainedModel(layers: 1, epochs: 2)
        let options = SamplingOptions(temperature: 0, repetitionPenalty: 1e6, repetitionWindow: 3)
        let ids = try model.generate(prompt: [0], count: 40, options: options)
        let history: [Int32] = [0] + ids
        // Each step's penalised row is what the options say; greedy takes its argmax.
        let rows = try GenerationTests.stepRows(of: model, prompt: [0], generated: ids)
        for (step, (id, row)) in zip(ids, rows).enumerated() {
            let recent = Array(history.prefix(step + 1))
            #expect(options.distribution(logits: row, recent: recent).map(\.id) == [id], "step \(step)")
        }
    }

    @Test("Sampling options out of range are refused with a sentence naming the option")
    func badOptionsRefused() throws {
        let (model, _) = try ModelIOFixture.trainedModel(layers: 1, epochs: 1)
        let bad: [(SamplingOptions, String)] = [
            (.init(topP: 0), "top-p"), (.init(topP: -0.5), "top-p"), (.init(topP: 1.01), "top-p"), (.init(topP: .nan), "top-p"),
            (.init(repetitionPenalty: 0.9), "repetition penalty"), (.init(repetitionPenalty: .infinity), "repetition penalty"),
            (.init(repetitionPenalty: .nan), "repetition penalty"), (.init(repetitionWindow: -1), "repetition window"),
            (.init(temperature: -1), "temperature"), (.init(topK: 0), "top-k"),
        ]
        for (options, name) in bad {
            let error = #expect(throws: RNNCoreError.self) { try options.validate() }
            #expect(error.map { "\($0)".contains(name) } == true, "\(String(describing: error))")
            #expect(throws: RNNCoreError.self) { _ = try model.generate(prompt: [0], count: 3, options: options) }
            #expect(throws: RNNCoreError.self) { _ = try GenerationSession(model: model, options: options) }
        }
        try SamplingOptions(topP: 1, repetitionPenalty: 1, repetitionWindow: 0).validate()
        #expect(throws: RNNCoreError.self) { _ = try StopStrings(["ok", ""]) }
    }

    @Test("The same seed gives the same ids with every option; a session gives what generate gives")
    func determinismAndSession() throws {
        let (model, _) = try ModelIOFixture.trainedModel(layers: 2, epochs: 2)
        let options = SamplingOptions(temperature: 1.2, topK: 8, topP: 0.9, repetitionPenalty: 1.3, repetitionWindow: 5, seed: 17)
        let first = try model.generate(prompt: [1, 2], count: 50, options: options)
        #expect(try model.generate(prompt: [1, 2], count: 50, options: options) == first)
        #expect(try ModelIOFixture.copy(of: model).generate(prompt: [1, 2], count: 50, options: options) == first)
        var other = options
        other.seed = 18
        #expect(try model.generate(prompt: [1, 2], count: 50, options: other) != first)

        var session = try GenerationSession(model: model, options: options)
        #expect(!session.canContinue)
        #expect(throws: RNNCoreError.self) { _ = try session.next() }
        try session.feed([1, 2])
        var drawn: [Int32] = []
        for _ in 0..<50 { drawn.append(try session.next()) }
        #expect(drawn == first)
        #expect(session.history == [1, 2] + first && session.generatedCount == 50)
        #expect(throws: RNNCoreError.self) { try session.feed([Int32(model.configuration.vocabularySize)]) }
    }

    @Test("The AsyncSequence yields the tokens generate returns, and stops early when the loop does")
    func asyncSequenceMatches() async throws {
        let (model, _) = try ModelIOFixture.trainedModel(layers: 1, epochs: 2)
        for options in [SamplingOptions(seed: 3), SamplingOptions(temperature: 0.7, topP: 0.8, repetitionPenalty: 1.2, seed: 9),
                        SamplingOptions(temperature: 0)] {
            let expected = try model.generate(prompt: [0, 4], count: 30, options: options)
            var streamed: [Int32] = []
            for try await id in model.tokens(prompt: [0, 4], count: 30, options: options) { streamed.append(id) }
            #expect(streamed == expected)
            var prefix: [Int32] = []
            for try await id in model.tokens(prompt: [0, 4], count: 30, options: options) {
                prefix.append(id)
                if prefix.count == 7 { break }
            }
            #expect(prefix == Array(expected.prefix(7)))
        }
        var none = 0
        for try await _ in model.tokens(prompt: [0], count: 0) { none += 1 }
        #expect(none == 0)
        await #expect(throws: RNNCoreError.self) {
            for try await _ in model.tokens(prompt: [], count: 3) {}
        }
        await #expect(throws: RNNCoreError.self) {
            for try await _ in model.tokens(prompt: [0], count: 3, options: .init(topP: 0)) {}
        }
    }

    @Test("Stop strings match the end of the generated text, across token boundaries")
    func stopStrings() throws {
        var stops = try StopStrings(["\n", "ab c"])
        #expect(stops.append("x") == nil)
        #expect(stops.append("a") == nil)
        #expect(stops.append("b") == nil)
        #expect(stops.append(" c") == "ab c")
        stops.reset()
        #expect(stops.append(" c") == nil)
        #expect(stops.append("end\n") == "\n")
        var none = try StopStrings([])
        #expect(none.append("anything") == nil)
    }

    @Test("Pieces of the incremental decoder join to what decode gives")
    func incrementalDecoding() throws {
        for level in Vocabulary.Level.allCases {
            let tokens = level == .word ? ["<eos>", "a", "bb", "c"] : ["\n", "a", "b", " "]
            let vocabulary = try Vocabulary(tokens: tokens, level: level)
            let ids: [Int32] = [1, 2, 0, 0, 3, 1, 0, 2, 9]
            var decoder = IncrementalDecoder(vocabulary: vocabulary)
            #expect(ids.map { decoder.text(for: $0) }.joined() == vocabulary.decode(ids), "\(level)")
        }
    }
}
