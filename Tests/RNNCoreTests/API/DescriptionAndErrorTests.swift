import Foundation
import RNNCore
import Testing

/// What a trainer reports reads as one line of English, and every error of the library can be caught as one family.
@Suite("API: descriptions and the error family")
struct DescriptionAndErrorTests {
    @Test func trainingEventsReadAsOneLine() throws {
        let corpus = try Corpus(text: String(repeating: "a b c d e f g .\n", count: 12), level: .word)
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: corpus.vocabulary.count, embeddingSize: 4, hiddenSize: 4), seed: 1)
        var options = TrainingOptions()
        options.batchSize = 2
        options.bptt = 4
        options.epochs = 1
        options.progressInterval = 1
        options.measureAccuracy = true
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options)
        var lines: [String] = []
        try trainer.train(on: corpus.ids, validation: corpus.ids) { lines.append("\($0)") }
        let progress = try #require(lines.first)
        #expect(progress.hasPrefix("epoch 1, batch 1/") && progress.contains("train perplexity ")
                    && progress.contains(" tokens/s") && progress.contains(" s left"), "\(progress)")
        let end = try #require(lines.last)
        #expect(end.hasPrefix("epoch 1: train perplexity ") && end.contains("validation perplexity ")
                    && end.contains("train accuracy ") && end.contains("learning rate 0.1"), "\(end)")
        #expect(!end.contains("skipped"))
        #expect(lines.allSatisfy { !$0.contains("\n") && !$0.contains("EpochReport(") && !$0.contains("Progress(") })
        #expect(trainer.reports[0].description == end)
    }

    /// Forces one error of each type and catches it as `any RNNCoreFailure`.
    @Test func everyErrorTypeIsAnRNNCoreFailure() throws {
        let missing = FileManager.default.temporaryDirectory
            .appendingPathComponent("rnncore-api-\(UInt64.random(in: 0 ... .max))/absent.safetensors")
        let failures: [() throws -> Void] = [
            { _ = try RNNLanguageModel(configuration: .init(vocabularySize: 0), seed: 1) },
            { _ = try Corpus(ids: [7], vocabulary: Vocabulary(tokens: ["a"], level: .word)) },
            { _ = try RNNLanguageModel.load(from: missing) },
            { _ = try RNNLanguageModel(pyTorchWordLanguageModel: [:]) },
            { throw OutputFileError(path: "/dev/null", reason: "it is a character device, not a regular file") },
            { throw CommunicatorError("MPI_Allreduce returned error class 5: invalid count") },
        ]
        var kinds: [String] = []
        for fail in failures {
            do {
                try fail()
                Issue.record("no error")
            } catch let error as any RNNCoreFailure {
                kinds.append("\(type(of: error))")
                #expect(!error.description.isEmpty && !error.description.contains("Error("), "\(error)")
            } catch {
                Issue.record("\(type(of: error)) is not an RNNCoreFailure: \(error)")
            }
        }
        #expect(kinds == ["RNNCoreError", "DataError", "CheckpointError", "PyTorchImportError", "OutputFileError",
                          "CommunicatorError"])
    }
}
