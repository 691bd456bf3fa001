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

    /// ResumableTraining.md, Generation.md, Cells.md and Errors.md, in a scratch directory.
    @Test func resumableTrainingGenerationCellsAndErrors() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("rnncore-articles-\(UInt64.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let corpus = try Corpus(text: String(repeating: "the market fell . the market rose .\n", count: 20), level: .word)
        let valid = corpus
        var settings = TrainingSettings()
        settings.model.embeddingSize = 8
        settings.model.hiddenSize = 8
        settings.training.batchSize = 2
        settings.training.bptt = 5
        settings.training.epochs = 1
        settings.optimizer.learningRate = 0.01

        // ResumableTraining.md, with the file in the scratch directory
        let url = directory.appendingPathComponent("run.safetensors")
        for _ in 0..<2 {
            let trainer = FileManager.default.fileExists(atPath: url.path)
                ? try Trainer(resumingFrom: url)
                : try Trainer(settings: settings, vocabularySize: corpus.vocabulary.count)
            try trainer.train(on: corpus.ids, validation: valid.ids, shouldStop: { trainer.batch % 10 == 0 })
            try trainer.saveTrainingState(to: url, vocabulary: corpus.vocabulary)
        }
        let resumed = try Trainer(resumingFrom: url)
        #expect(resumed.isFinished && resumed.step > 10)  // stopped at batch 10, then finished the epoch
        try resumed.model.save(to: directory.appendingPathComponent("model.safetensors"), vocabulary: corpus.vocabulary)

        // Generation.md, with the file in the scratch directory
        let (model, vocabulary) = try RNNLanguageModel.load(from: directory.appendingPathComponent("model.safetensors"))
        let prompt = try vocabulary.encode("the market")
        var options = SamplingOptions(temperature: 0.8, topK: 40, seed: 1)
        if let unknown = vocabulary.id(of: Vocabulary.unknownToken) { options.excluded = [unknown] }
        let ids = try model.generate(prompt: prompt, count: 30, options: options)
        #expect(ids.count == 30 && !vocabulary.decode(prompt + ids).isEmpty)

        // Cells.md
        let lstm = try RNNLanguageModel(
            configuration: .init(vocabularySize: vocabulary.count, embeddingSize: 200, hiddenSize: 200, layers: 2,
                                 cell: .lstm, dropout: 0.2),
            seed: 1)
        let gru = try RecurrentNetwork(cell: .gru, inputSize: 10, hiddenSize: 20, layers: 1, seed: 3)
        #expect(lstm.configuration.cell.specification.gates == 4 && gru.cell.specification.gates == 3)

        // Errors.md, with a file that is not there
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }
        let missing = directory.appendingPathComponent("absent.txt")
        do {
            let corpus = try Corpus.load(contentsOf: missing, level: .word)
            let model = try RNNLanguageModel(
                configuration: .init(vocabularySize: corpus.vocabulary.count), seed: 1)
            _ = model
        } catch let error as any RNNCoreFailure {
            print("error: \(error)")          // never an enum dump
        }
        #expect(printed.count == 1 && printed[0].hasPrefix("error: ") && printed[0].contains("absent.txt"), "\(printed)")
    }
}
