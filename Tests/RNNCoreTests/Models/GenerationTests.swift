// Sampling: determinism by seed, greedy decoding against a step-by-step argmax, top-k and exclusions checked against
// the logits of an independent copy of the model fed the same prefix, and option validation.

import Foundation
import RNNCore
import Testing

@Suite("Models: generation")
struct GenerationTests {
    /// The shared tiny trained model (V 12, D = H = 6): peaked enough that top-k matters, small enough to be fast.
    static func model(layers: Int = 1) throws -> (model: RNNLanguageModel, vocabulary: Vocabulary) {
        try ModelIOFixture.trainedModel(layers: layers, epochs: 2)
    }

    /// The last-position logits the model sees before each generated token: feeds `prompt` from a zero state to an
    /// independent copy, then every generated token in turn, exactly as generation does.
    static func stepRows(of model: RNNLanguageModel, prompt: [Int32], generated: [Int32]) throws -> [[Float]] {
        let copy = try ModelIOFixture.copy(of: model)
        let V = model.configuration.vocabularySize
        copy.resetState()
        var logits = try copy.logits(for: prompt, batchSize: 1)
        var rows: [[Float]] = []
        for id in generated {
            rows.append(ModelIOFixture.lastRow(of: logits, vocabularySize: V))
            logits = try copy.logits(for: [id], batchSize: 1)
        }
        return rows
    }

    @Test("The same seed gives the same ids; other seeds give other ids", arguments: [1, 2])
    func seedDeterminism(layers: Int) throws {
        let (model, _) = try Self.model(layers: layers)
        let prompt: [Int32] = [0, 1]
        let options = SamplingOptions(temperature: 1.5, seed: 42)
        let first = try model.generate(prompt: prompt, count: 60, options: options)
        #expect(first.count == 60)
        #expect(first.allSatisfy { (0..<Int32(model.configuration.vocabularySize)).contains($0) })
        // Generation starts from a zero state, so whatever ran before does not matter.
        _ = try model.logits(for: [3, 4, 5], batchSize: 1)
        #expect(try model.generate(prompt: prompt, count: 60, options: options) == first)
        #expect(try ModelIOFixture.copy(of: model).generate(prompt: prompt, count: 60, options: options) == first)
        // A shorter run is a prefix of a longer one with the same seed.
        #expect(try model.generate(prompt: prompt, count: 25, options: options) == Array(first.prefix(25)))

        var distinct: Set<[Int32]> = [first]
        for seed: UInt64 in [0, 1, 2, 43, .max] {
            distinct.insert(try model.generate(prompt: prompt, count: 60, options: .init(temperature: 1.5, seed: seed)))
        }
        #expect(distinct.count == 6, "60 tokens at temperature 1.5 should differ between seeds")
        #expect(try model.generate(prompt: prompt, count: 0, options: options) == [])
    }

    @Test("Temperature 0 takes the argmax at every step; top-k 1 is the same greedy text")
    func greedy() throws {
        let (model, _) = try Self.model()
        let prompt: [Int32] = [2, 0, 5]
        let greedy = try model.generate(prompt: prompt, count: 40, options: .init(temperature: 0, seed: 9))
        let rows = try Self.stepRows(of: model, prompt: prompt, generated: greedy)
        for (step, (id, row)) in zip(greedy, rows).enumerated() {
            #expect(id == ModelIOFixture.ranking(of: row)[0], "step \(step)")
        }
        // The seed plays no role at temperature 0, and top-k 1 leaves only the argmax at any temperature.
        #expect(try model.generate(prompt: prompt, count: 40, options: .init(temperature: 0, seed: 123)) == greedy)
        for temperature in [0.5, 1, 3] {
            for seed: UInt64 in [0, 7] {
                #expect(try model.generate(prompt: prompt, count: 40,
                                           options: .init(temperature: temperature, topK: 1, seed: seed)) == greedy,
                        "top-k 1 at temperature \(temperature), seed \(seed)")
            }
        }
    }

    @Test("Top-k draws only among the k most likely ids of each step", arguments: [2, 3, 5])
    func topK(k: Int) throws {
        let (model, _) = try Self.model()
        let prompt: [Int32] = [0]
        var outsideArgmax = 0
        for seed: UInt64 in [1, 2, 3] {
            let ids = try model.generate(prompt: prompt, count: 80, options: .init(temperature: 2, topK: k, seed: seed))
            let rows = try Self.stepRows(of: model, prompt: prompt, generated: ids)
            for (step, (id, row)) in zip(ids, rows).enumerated() {
                let ranking = ModelIOFixture.ranking(of: row)
                #expect(ranking.prefix(k).contains(id), "seed \(seed) step \(step): \(id) is not among the top \(k)")
                if id != ranking[0] { outsideArgmax += 1 }
            }
        }
        #expect(outsideArgmax > 0, "at temperature 2 top-\(k) sampling should not always pick the argmax")
    }

    @Test("Top-k at or above the vocabulary size is no restriction")
    func topKAtVocabularySize() throws {
        let (model, _) = try Self.model()
        let V = model.configuration.vocabularySize
        let unrestricted = try model.generate(prompt: [0], count: 50, options: .init(seed: 5))
        #expect(try model.generate(prompt: [0], count: 50, options: .init(topK: V, seed: 5)) == unrestricted)
        #expect(try model.generate(prompt: [0], count: 50, options: .init(topK: 1_000_000, seed: 5)) == unrestricted)
    }

    @Test("Excluded ids are never produced, whatever the sampling mode")
    func exclusions() throws {
        let (model, _) = try Self.model()
        let V = Int32(model.configuration.vocabularySize)
        let prompt: [Int32] = [0, 1]
        // Exclude the ids greedy decoding likes most, so that exclusion really changes the text.
        let greedy = try model.generate(prompt: prompt, count: 30, options: .init(temperature: 0))
        let excluded = Set(greedy.prefix(3)).union([V - 1])
        #expect(excluded.count < Int(V) - 2)
        for (temperature, topK) in [(0.0, nil), (1.0, nil), (3.0, nil), (1.0, 2), (2.0, 4)] as [(Double, Int?)] {
            for seed: UInt64 in [0, 1] {
                let options = SamplingOptions(temperature: temperature, topK: topK, seed: seed, excluded: excluded)
                let ids = try model.generate(prompt: prompt, count: 80, options: options)
                #expect(ids.allSatisfy { !excluded.contains($0) }, "temperature \(temperature), top-k \(String(describing: topK))")
                // Where restricted, the id is among the top k of the ids that are not excluded.
                let rows = try Self.stepRows(of: model, prompt: prompt, generated: ids)
                for (step, (id, row)) in zip(ids, rows).enumerated() {
                    let allowed = ModelIOFixture.ranking(of: row).filter { !excluded.contains($0) }
                    let k = temperature == 0 ? 1 : topK ?? allowed.count
                    #expect(allowed.prefix(k).contains(id), "temperature \(temperature) top-k \(String(describing: topK)) step \(step)")
                }
            }
        }
        // Everything but one id excluded: only that id comes out.
        let onlyFour = Set((0..<V).filter { $0 != 4 })
        #expect(try model.generate(prompt: prompt, count: 20, options: .init(seed: 3, excluded: onlyFour)) == Array(repeating: 4, count: 20))
    }

    @Test("Invalid arguments throw invalidArgument")
    func invalidArguments() throws {
        let (model, _) = try Self.model()
        let V = Int32(model.configuration.vocabularySize)
        modelIOExpectInvalidArgument("negative count") { _ = try model.generate(prompt: [0], count: -1) }
        modelIOExpectInvalidArgument("top-k 0") { _ = try model.generate(prompt: [0], count: 5, options: .init(topK: 0)) }
        modelIOExpectInvalidArgument("top-k -3") { _ = try model.generate(prompt: [0], count: 5, options: .init(topK: -3)) }
        for temperature in [-1, -.leastNonzeroMagnitude, .nan, .infinity, -.infinity] as [Double] {
            modelIOExpectInvalidArgument("temperature \(temperature)") {
                _ = try model.generate(prompt: [0], count: 5, options: .init(temperature: temperature))
            }
        }
        modelIOExpectInvalidArgument("empty prompt") { _ = try model.generate(prompt: [], count: 5) }
        modelIOExpectInvalidArgument("all excluded") {
            _ = try model.generate(prompt: [0], count: 5, options: .init(excluded: Set(0..<V)))
        }
        modelIOExpectInvalidArgument("all excluded, at temperature 0") {
            _ = try model.generate(prompt: [0], count: 5, options: .init(temperature: 0, excluded: Set(0..<V)))
        }
        // Prompt ids outside the vocabulary are refused, not read out of bounds.
        #expect(throws: RNNCoreError.self) { _ = try model.generate(prompt: [V], count: 5) }
        #expect(throws: RNNCoreError.self) { _ = try model.generate(prompt: [0, -1], count: 5) }
    }

    @Test("Excluding ids outside the vocabulary does not count as excluding real ones")
    func excludedOutOfRangeIDs() throws {
        let (model, _) = try Self.model()
        let V = Int32(model.configuration.vocabularySize)
        // Every id but V-1 excluded, plus two ids that do not exist: V-1 is still available.
        let excluded = Set(0..<(V - 1)).union([V, 1_000])
        let ids = try model.generate(prompt: [0], count: 5, options: .init(seed: 1, excluded: excluded))
        #expect(ids == Array(repeating: V - 1, count: 5))
    }

    @Test("A tiny positive temperature behaves like greedy decoding")
    func tinyTemperature() throws {
        let (model, _) = try Self.model()
        let prompt: [Int32] = [0]
        let greedy = try model.generate(prompt: prompt, count: 30, options: .init(temperature: 0))
        // Near-greedy temperatures that still work.
        #expect(try model.generate(prompt: prompt, count: 30, options: .init(temperature: 1e-6, seed: 1)) == greedy)
        // Below ~1e-300, logit / temperature alone would overflow to ±infinity (exp(inf - inf) = NaN); the
        // sampler shifts by the best logit first, so the argmax keeps weight 1 and every other id gets 0.
        for temperature in [1e-308, Double.leastNonzeroMagnitude] {
            let ids = try model.generate(prompt: prompt, count: 30, options: .init(temperature: temperature, seed: 1))
            #expect(ids == greedy, "temperature \(temperature)")
        }
    }
}
