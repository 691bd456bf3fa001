// Shared fixtures of the checkpoint and generation tests: a scratch directory, a generated word-level text and a
// tiny language model trained on it for a few steps.

import Foundation
import RNNCore
import Testing

/// A fresh temporary directory for one test, removed when the object goes away.
final class ModelIOScratchDirectory {
    /// The directory.
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("rnncore-model-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    /// The URL of `name` inside the directory (not created).
    func file(_ name: String) -> URL {
        url.appendingPathComponent(name)
    }

    /// The names of the entries in the directory, hidden ones included, sorted.
    func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }
}

/// A small generated text and models trained on it.
enum ModelIOFixture {
    /// The words of the generated text (11 words plus `<eos>`: V = 12).
    static let nouns = ["cat", "dog", "bird", "fish"]
    static let verbs = ["sees", "likes", "chases"]
    static let adjectives = ["big", "small", "red"]

    /// About `sentences` × 6 tokens of text: "the ADJ NOUN VERB the NOUN", one sentence a line, with seeded choices.
    static func text(sentences: Int, seed: UInt64) -> String {
        var rng = Xoshiro256StarStar(seed: seed)
        func pick(_ words: [String]) -> String { words[rng.nextInt(below: words.count)] }
        var lines: [String] = []
        for _ in 0..<sentences {
            lines.append("the \(pick(adjectives)) \(pick(nouns)) \(pick(verbs)) the \(pick(nouns))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The vocabulary of the generated texts and the ids of a training text of ~2 000 tokens.
    static func trainingCorpus() throws -> Corpus {
        try Corpus(text: text(sentences: 300, seed: 11), level: .word)
    }

    /// A held-out text in the same vocabulary.
    static func heldOutIDs(vocabulary: Vocabulary) throws -> [Int32] {
        try Corpus(text: text(sentences: 40, seed: 12), vocabulary: vocabulary).ids
    }

    /// A model with D = H = 6 and `layers` layers over the corpus vocabulary, trained for `epochs` short epochs
    /// (N 4, T 5) with Adam so that its weights are no longer the seeded initial ones.
    static func trainedModel(layers: Int, cell: CellKind = .rnn, seed: UInt64 = 5,
                             epochs: Int = 1) throws -> (model: RNNLanguageModel, vocabulary: Vocabulary) {
        let corpus = try trainingCorpus()
        let configuration = RNNLanguageModel.Configuration(
            vocabularySize: corpus.vocabulary.count, embeddingSize: 6, hiddenSize: 6, layers: layers, cell: cell)
        let model = try RNNLanguageModel(configuration: configuration, seed: seed)
        var options = TrainingOptions()
        options.batchSize = 4
        options.bptt = 5
        options.epochs = epochs
        options.progressInterval = 1_000
        let trainer = Trainer(model: model, optimizer: Adam(learningRate: 0.02), options: options)
        try trainer.train(on: corpus.ids)
        return (model, corpus.vocabulary)
    }

    /// An independent model with the same configuration and bit-identical parameters.
    static func copy(of model: RNNLanguageModel) throws -> RNNLanguageModel {
        try RNNLanguageModel(configuration: model.configuration, tensors: model.namedTensors)
    }

    /// The last row (V logits) of a logits tensor (N, T, V).
    static func lastRow(of logits: Tensor, vocabularySize V: Int) -> [Float] {
        let scalars = logits.scalars
        return Array(scalars[(scalars.count - V)...])
    }

    /// Ids ordered from most to least likely, ties broken by the smaller id.
    static func ranking(of row: [Float]) -> [Int32] {
        row.indices.sorted { (row[$0], $1) > (row[$1], $0) }.map { Int32($0) }
    }

    /// Whether two tensors have the same shape and bit-identical elements.
    static func bitwiseEqual(_ a: Tensor, _ b: Tensor) -> Bool {
        a.shape == b.shape && a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern)
    }
}

/// `#expect`s that `body` throws ``RNNCoreError/invalidArgument(_:)``.
func modelIOExpectInvalidArgument(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                                  _ body: () throws -> Void) {
    let error = #expect(throws: RNNCoreError.self, comment, sourceLocation: sourceLocation) { try body() }
    if let error {
        guard case .invalidArgument = error else {
            Issue.record("expected invalidArgument, got \(error)", sourceLocation: sourceLocation)
            return
        }
    }
}
