import RNNCore
import Testing

/// Models and trainers are not `Sendable`: they hold mutable state and are used from one task at a time. Swift 6's
/// region-based isolation still moves them: a model created here and never touched again here can be sent into a
/// `Task`, or handed to an actor that owns it. These tests compile only because that is allowed.
@Suite("API: models and trainers across tasks")
struct ConcurrencyTests {
    private static let text = String(repeating: "one two three four five six seven eight nine ten .\n", count: 10)

    /// A trainer of a fresh model; the caller owns both, and can send them elsewhere.
    private static func makeTrainer(vocabularySize: Int) throws -> sending Trainer {
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: vocabularySize, embeddingSize: 8, hiddenSize: 8, cell: .gru),
            seed: 5)
        var options = TrainingOptions()
        options.batchSize = 2
        options.bptt = 5
        options.epochs = 2
        return Trainer(model: model, optimizer: Adam(learningRate: 0.01), options: options)
    }

    @Test func aTrainerMovesIntoATaskAndTrainsAndEvaluatesThere() async throws {
        let corpus = try Corpus(text: Self.text, level: .word)
        let ids = corpus.ids
        let trainer = try Self.makeTrainer(vocabularySize: corpus.vocabulary.count)
        // `trainer` (and the model it holds) is sent into the task; this function does not use it afterwards.
        let (reports, perplexity) = try await Task {
            let reports = try trainer.train(on: ids)
            return (reports, try trainer.model.perplexity(on: ids, batchSize: 2))
        }.value
        #expect(reports.count == 2 && reports.allSatisfy { $0.trainPerplexity.isFinite })
        #expect(perplexity.isFinite && perplexity < Double(corpus.vocabulary.count))
    }

    /// An actor that owns a trainer: every use of the model goes through the actor, one call at a time.
    actor LanguageModelService {
        private let trainer: Trainer
        init(trainer: sending Trainer) { self.trainer = trainer }

        func train(on ids: [Int32], steps: Int) throws(RNNCoreError) -> [StepResult] {
            var batcher = try BPTTBatcher(ids: ids, batchSize: trainer.options.batchSize, bptt: trainer.options.bptt)
            return try (0..<steps).map { _ throws(RNNCoreError) in
                let (inputs, targets) = batcher.next()
                return try trainer.step(inputs: inputs, targets: targets, batchSize: trainer.options.batchSize)
            }
        }

        func perplexity(on ids: [Int32]) throws(RNNCoreError) -> Double {
            try trainer.model.perplexity(on: ids)
        }
    }

    @Test func anActorOwnsATrainerAndStepsItFromOtherTasks() async throws {
        let corpus = try Corpus(text: Self.text, level: .word)
        let service = LanguageModelService(trainer: try Self.makeTrainer(vocabularySize: corpus.vocabulary.count))
        let ids = corpus.ids
        async let first = service.train(on: ids, steps: 3)
        async let second = service.train(on: ids, steps: 3)
        let results = try await first + second
        #expect(results.count == 6 && results.allSatisfy { !$0.isSkipped && $0.loss.isFinite })
        #expect(try await service.perplexity(on: ids).isFinite)
    }
}
