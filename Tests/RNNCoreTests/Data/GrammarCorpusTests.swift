import Foundation
import Testing
import RNNCore

@Suite("Grammar corpus")
struct GrammarCorpusTests {
    static let small = GrammarCorpus.Configuration(
        wordCount: 40, minimumSuccessors: 3, maximumSuccessors: 8, sentenceStartCount: 10, zipfExponent: 1.3, seed: 9)
    static let flat = GrammarCorpus.Configuration(
        wordCount: 120, minimumSuccessors: 20, maximumSuccessors: 30, sentenceStartCount: 30, zipfExponent: 0.5, seed: 4)

    @Test("The default chain has the documented size and a true perplexity between 10 and 30")
    func defaultChain() {
        let grammar = GrammarCorpus()
        #expect(grammar.vocabulary.count == 251)
        #expect(grammar.vocabulary.token(at: 0) == "<eos>")
        #expect(grammar.vocabulary.level == .word)
        #expect(grammar.truePerplexity > 10 && grammar.truePerplexity < 30)
        #expect(abs(grammar.truePerplexity - exp(grammar.trueEntropyRate)) < 1e-12)
    }

    @Test("The stationary distribution is a distribution and is stationary", arguments: [Self.small, Self.flat, .init()])
    func stationary(configuration: GrammarCorpus.Configuration) {
        let grammar = GrammarCorpus(configuration: configuration)
        let pi = grammar.stationaryDistribution
        #expect(pi.count == grammar.vocabulary.count)
        #expect(abs(pi.reduce(0, +) - 1) < 1e-12)
        #expect(pi.allSatisfy { $0 > 0 })  // irreducible: every token recurs
        var next = [Double](repeating: 0, count: pi.count)
        for i in pi.indices {
            for (j, p) in grammar.successors(of: Int32(i)) { next[Int(j)] += pi[i] * p }
        }
        let change = zip(next, pi).map { abs($0 - $1) }.reduce(0, +)
        #expect(change < 1e-12)
    }

    @Test("Rows are distributions with the configured number of successors, <eos> among them", arguments: [Self.small, .init()])
    func rows(configuration: GrammarCorpus.Configuration) {
        let grammar = GrammarCorpus(configuration: configuration)
        let start = grammar.successors(of: 0)
        #expect(start.count == configuration.sentenceStartCount)
        #expect(!start.contains { $0.id == 0 })
        for word in 1...Int32(configuration.wordCount) {
            let row = grammar.successors(of: word)
            #expect((configuration.minimumSuccessors...configuration.maximumSuccessors).contains(row.count))
            #expect(abs(row.map(\.probability).reduce(0, +) - 1) < 1e-12)
            #expect(Set(row.map(\.id)).count == row.count)
            #expect(row.contains { $0.id == 0 })
            #expect(zip(row, row.dropFirst()).allSatisfy { $0.probability >= $1.probability })
            #expect(grammar.probability(of: row[0].id, after: word) == row[0].probability)
        }
        #expect(grammar.probability(of: 0, after: 0) == 0)
        #expect(grammar.successors(of: -1).isEmpty)
    }

    @Test("The empirical log-loss of the true chain matches the entropy rate", arguments: [Self.small, Self.flat, .init()])
    func entropyRateMatchesSampling(configuration: GrammarCorpus.Configuration) {
        let grammar = GrammarCorpus(configuration: configuration)
        let ids = grammar.generateIDs(count: 300_000, seed: 77)
        // Standard error from batch means (the losses of a Markov chain are correlated over short ranges).
        let batches = 100
        let batchSize = ids.count / batches
        var previous: Int32 = 0
        var batchMeans: [Double] = []
        for b in 0..<batches {
            var sum = 0.0
            for id in ids[(b * batchSize)..<((b + 1) * batchSize)] {
                sum -= log(grammar.probability(of: id, after: previous))
                previous = id
            }
            batchMeans.append(sum / Double(batchSize))
        }
        let mean = batchMeans.reduce(0, +) / Double(batches)
        let variance = batchMeans.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(batches - 1)
        let standardError = (variance / Double(batches)).squareRoot()
        #expect(abs(mean - grammar.trueEntropyRate) < 5 * standardError + 1e-3)
        #expect(abs(grammar.crossEntropy(of: ids) - mean) < 1e-9)
    }

    @Test("The same seeds give the same text; different seeds differ")
    func determinism() {
        let a = GrammarCorpus()
        let b = GrammarCorpus(configuration: .init())
        #expect(a.vocabulary == b.vocabulary)
        #expect(a.trueEntropyRate == b.trueEntropyRate)
        #expect(a.generate(tokens: 5_000, seed: 3) == b.generate(tokens: 5_000, seed: 3))
        #expect(a.generate(tokens: 5_000, seed: 3) != a.generate(tokens: 5_000, seed: 4))
        var other = GrammarCorpus.Configuration()
        other.seed = 1
        #expect(GrammarCorpus(configuration: other).vocabulary != a.vocabulary)
    }

    @Test("The chain and its text are pinned: a change here breaks reproducibility of published results")
    func golden() {
        let grammar = GrammarCorpus()
        let ids = grammar.generateIDs(count: 12, seed: 1)
        let expected = GoldenGrammar.ids
        #expect(ids == expected)
        #expect(abs(grammar.trueEntropyRate - GoldenGrammar.entropyRate) < 1e-12)
        #expect(Array(grammar.vocabulary.tokens.prefix(4)) == GoldenGrammar.firstTokens)
    }

    @Test("Generated text is whole sentences and encodes back to the drawn ids")
    func textRoundTrip() throws {
        let grammar = GrammarCorpus(configuration: Self.small)
        let text = grammar.generate(tokens: 2_000, seed: 5)
        #expect(text.hasSuffix("\n"))
        let ids = try grammar.vocabulary.encode(text)
        #expect(ids.count >= 2_000)
        #expect(ids.last == 0)
        #expect(grammar.vocabulary.decode(ids) == text)
        #expect(grammar.crossEntropy(of: ids).isFinite)
        let rebuilt = try Corpus(text: text, level: .word)
        #expect(rebuilt.count == ids.count)
    }

    @Test("Splits share the chain's vocabulary and have at least the requested sizes")
    func splits() {
        let grammar = GrammarCorpus()
        let splits = grammar.makeSplits(trainTokens: 20_000, validTokens: 2_000, testTokens: 3_000, seed: 8)
        #expect(splits.vocabulary == grammar.vocabulary)
        #expect(splits.valid.vocabulary == grammar.vocabulary)
        #expect(splits.train.count >= 20_000 && splits.valid.count >= 2_000 && splits.test.count >= 3_000)
        #expect(splits.train.ids != splits.valid.ids)
        #expect(splits == grammar.makeSplits(trainTokens: 20_000, validTokens: 2_000, testTokens: 3_000, seed: 8))
    }

    @Test("crossEntropy is infinite for impossible text and 0 for no text")
    func crossEntropyEdges() {
        let grammar = GrammarCorpus(configuration: Self.small)
        #expect(grammar.crossEntropy(of: []) == 0)
        #expect(grammar.crossEntropy(of: [0]) == .infinity)  // "<eos>" never starts a sentence
    }
}

/// Values of the default chain, recorded when the generator was written.
enum GoldenGrammar {
    static let ids: [Int32] = [236, 247, 43, 110, 53, 245, 233, 44, 153, 3, 100, 5]
    static let entropyRate = 2.8039038680477648
    static let firstTokens = ["<eos>", "gus", "rousouban", "trukai"]
}
