import Foundation
import RNNCore
import Testing

/// The code of the DocC articles (Sources/RNNCore/RNNCore.docc), copied verbatim between the markers, compiles and
/// runs. `print` is captured so that the test can check what the snippets print.
@Suite("API: the DocC articles' code")
struct ArticleSnippetTests {
    @Test func gettingStartedFromAString() throws {
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }

        // GettingStarted.md
        let text = String(repeating: "the cat sat on the mat .\nthe dog sat on the log .\n", count: 40)
        let corpus = try Corpus(text: text, level: .word)       // "<eos>" marks each line end
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: corpus.vocabulary.count, embeddingSize: 16, hiddenSize: 32, cell: .lstm),
            seed: 1)

        var options = TrainingOptions()
        options.batchSize = 4   // N streams
        options.bptt = 8        // T steps per window
        options.epochs = 3
        let trainer = Trainer(model: model, optimizer: Adam(learningRate: 0.01), options: options)
        try trainer.train(on: corpus.ids) { event in print(event) }   // "epoch 1, batch 20/…: train perplexity …"

        print("perplexity", try model.perplexity(on: corpus.ids))

        let prompt = try corpus.vocabulary.encode("the cat")
        let next = try model.generate(prompt: prompt, count: 8, options: SamplingOptions(temperature: 0.5, seed: 7))
        print(corpus.vocabulary.decode(next))
        // end of GettingStarted.md

        #expect(printed.contains { $0.hasPrefix("epoch 3: train perplexity ") }, "\(printed)")
        let perplexity = try #require(printed.first { $0.hasPrefix("perplexity ") }.flatMap { Double($0.dropFirst(11)) })
        #expect(perplexity.isFinite && perplexity < Double(corpus.vocabulary.count))
        #expect(next.count == 8)
    }

    @Test func aManualTrainingLoop() throws {
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }
        let corpus = try Corpus(text: String(repeating: "a b c d e f .\n", count: 30), level: .word)
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: corpus.vocabulary.count, embeddingSize: 8, hiddenSize: 8), seed: 2)
        var options = TrainingOptions()
        options.batchSize = 2
        options.bptt = 5

        // ManualTrainingLoop.md
        let trainer = Trainer(model: model, optimizer: Adam(learningRate: 0.003), options: options)
        var batcher = try BPTTBatcher(ids: corpus.ids, batchSize: options.batchSize, bptt: options.bptt)
        for step in 1...500 {
            let (inputs, targets) = batcher.next()
            let result = try trainer.step(inputs: inputs, targets: targets, batchSize: options.batchSize)
            if step % 50 == 0 { print(step, result) }           // "loss 4.1234, gradient norm 0.8123 (clipped)"
            if step == 300 { trainer.optimizer.learningRate /= 2 }
        }
        // end of ManualTrainingLoop.md

        #expect(printed.count == 10 && printed.allSatisfy { $0.contains(" loss ") && $0.contains("gradient norm") },
                "\(printed)")
        #expect(trainer.optimizer.learningRate == Float(0.003) / 2)  // halving is exact
        #expect(trainer.step == 0)
    }
}
