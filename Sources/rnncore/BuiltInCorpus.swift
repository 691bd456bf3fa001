import ArgumentParser
import Foundation
import RNNCore

extension TrainingData {
    /// The built-in corpus: train/valid/test texts drawn from RNNCore's seeded Markov grammar.
    ///
    /// At the word level the true perplexity is that of the generating chain on the same test text, the best any
    /// model can do; at the character level no exact value is known.
    static func builtIn(seed: UInt64, level: Vocabulary.Level) throws -> TrainingData {
        let grammar = GrammarCorpus()
        let words = grammar.makeSplits(trainTokens: 600_000, seed: seed)
        let description = "the built-in grammar corpus (seed \(seed))"
        switch level {
        case .word:
            return TrainingData(splits: words, description: description,
                                truePerplexity: exp(grammar.crossEntropy(of: words.test.ids)))
        case .character:
            let train = try Corpus(text: words.train.text, level: .character)
            let splits = Corpus.Splits(
                train: train,
                valid: try Corpus(text: words.valid.text, vocabulary: train.vocabulary),
                test: try Corpus(text: words.test.text, vocabulary: train.vocabulary))
            return TrainingData(splits: splits, description: description + ", characters", truePerplexity: nil)
        }
    }
}

extension Vocabulary.Level: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "word", "words": self = .word
        case "char", "chars", "character", "characters": self = .character
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["word", "char"] }
}

extension CellKind: ExpressibleByArgument {}
extension InputEncoding: ExpressibleByArgument {}
