import Testing
import RNNCore

/// A NaN in the model makes a window's loss non-finite: training stops with a message naming the epoch and batch,
/// or, with `skipNonFinite`, skips those updates, counts them and goes on.
@Suite("Numerics: non-finite losses during training")
struct NonFiniteTrainingTests {
    /// A model whose embedding row for token 6 is NaN, and a text where token 6 appears once, near the end.
    private func poisoned() throws -> (RNNLanguageModel, [Int32]) {
        let model = try RNNLanguageModel(configuration: .init(vocabularySize: 7, embeddingSize: 4, hiddenSize: 6), seed: 2)
        let D = 4
        model.embedding.weight.value.withUnsafeMutableBufferPointer { w in
            for d in 0..<D { w[6 * D + d] = .nan }
        }
        var ids = (0..<300).map { Int32($0 % 6) }
        ids[250] = 6
        return (model, ids)
    }

    private func options(skip: Bool) -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 2
        options.bptt = 5
        options.epochs = 2
        options.skipNonFinite = skip
        return options
    }

    @Test func aNonFiniteLossStopsTrainingNamingTheStep() throws {
        let (model, ids) = try poisoned()
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options(skip: false))
        do {
            try trainer.train(on: ids)
            Issue.record("training went on past a NaN loss")
        } catch let error {
            guard case let .invalidState(message) = error else { Issue.record("unexpected error \(error)"); return }
            #expect(message.contains("non-finite loss at epoch 1, batch") && message.contains("(step "), "\(message)")
        }
    }

    @Test func skipNonFiniteCountsTheSkippedUpdatesAndKeepsTheWeightsFinite() throws {
        let (model, ids) = try poisoned()
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options(skip: true))
        let reports = try trainer.train(on: ids)
        #expect(reports.count == 2)
        // Token 6 sits in one window per epoch; each such update is skipped.
        #expect(reports.allSatisfy { $0.skippedUpdates >= 1 }, "\(reports.map(\.skippedUpdates))")
        #expect(reports.allSatisfy { $0.trainPerplexity.isFinite })
        for p in model.parameters where p.name != "embedding.weight" {
            #expect(p.value.scalars.allSatisfy { $0.isFinite }, "\(p.name)")
        }
    }
}
