import ArgumentParser
import Foundation
import RNNCore

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sample text from a trained model.")

    @Option(help: "A model written by rnncore train --out.", completion: .file()) var model: String
    @Option(parsing: .unconditional, help: "Text to start from (default: a line start).") var prompt: String?
    @Option(parsing: .unconditional, help: "Number of tokens to generate.") var count: Int = 100
    @Option(parsing: .unconditional, help: "Sampling temperature (0 = always the most likely token).") var temperature: Double = 1
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Sample only among the k most likely tokens.") var topK: Int?
    @Option(parsing: .unconditional, help: "Seed of the sampler.") var seed: UInt64 = 0

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be 0 or positive, got \(count)") }
        guard temperature >= 0, temperature.isFinite else {
            throw ValidationError("--temperature must be a finite number ≥ 0 (0 = always the most likely token), got \(temperature)")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
    }

    func run() throws {
        let (lm, vocabulary) = try RNNLanguageModel.load(from: URL(fileURLWithPath: model))
        let promptIDs: [Int32]
        if let prompt, !prompt.isEmpty {
            var ids = try vocabulary.encode(prompt, unknownTokens: .mapToUnknownIfPresent)
            // A word-level prompt is one line: drop the <eos> that ends it, so generation continues the line.
            if vocabulary.level == .word, ids.last == vocabulary.id(of: Vocabulary.endOfSentenceToken) { ids.removeLast() }
            guard !ids.isEmpty else { throw ValidationError("the prompt holds no tokens") }
            promptIDs = ids
        } else if let eos = vocabulary.id(of: Vocabulary.endOfSentenceToken) ?? vocabulary.id(of: "\n") {
            promptIDs = [eos]
        } else {
            promptIDs = [0]
        }
        var excluded: Set<Int32> = []
        if let unk = vocabulary.id(of: Vocabulary.unknownToken) { excluded.insert(unk) }
        let ids = try lm.generate(prompt: promptIDs, count: count,
                                  options: SamplingOptions(temperature: temperature, topK: topK, seed: seed, excluded: excluded))
        let separator = vocabulary.level == .word ? " " : ""
        let head = prompt.map { $0 + separator } ?? ""
        print(head + vocabulary.decode(ids))
    }
}
