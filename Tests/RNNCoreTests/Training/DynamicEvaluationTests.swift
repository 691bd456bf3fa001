// Dynamic evaluation: with a learning rate of 0 it is the ordinary evaluation bit for bit, the caller's model never
// changes, adapting helps where it must, and options out of range throw.

import Foundation
import RNNCore
import Testing

@Suite("Dynamic evaluation")
struct DynamicEvaluationTests {
    /// A model with every parameter zero over V token types: its hidden states are exactly 0 and it predicts the
    /// uniform distribution, loss log V at every position.
    static func zeroModel(vocabularySize V: Int) throws -> RNNLanguageModel {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: V, embeddingSize: 4, hiddenSize: 5)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in configuration.parameterShapes { tensors[name] = Tensor(zeros: shape) }
        return try RNNLanguageModel(configuration: configuration, tensors: tensors)
    }

    /// Batchings of the held-out text (241 tokens): Mikolov's batch 1, several streams with a padded last stream,
    /// windows that do and do not divide the streams, one window for everything.
    static let batchings: [(batch: Int, bptt: Int)] = [(1, 35), (1, 4), (3, 5), (7, 35), (2, 500)]

    @Test("with learning rate 0 the dynamic loss is the static one, bit for bit", arguments: [CellKind.rnn, .lstm])
    func zeroRateIsStatic(cell: CellKind) throws {
        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: 2, cell: cell)
        let ids = try ModelIOFixture.heldOutIDs(vocabulary: vocabulary)
        for (batch, bptt) in Self.batchings {
            let options = DynamicEvaluationOptions(learningRate: 0, clipNorm: nil, batchSize: batch, bptt: bptt)
            let result = try model.dynamicEvaluation(on: ids, options: options)
            let (loss, count) = try model.meanLoss(on: ids, batchSize: batch, bptt: bptt)
            // Exact: the same windows, the same forward passes and the same summation order, and p − 0·g = p.
            #expect(result.dynamicLoss == loss, "batch \(batch), bptt \(bptt)")
            #expect(result.staticLoss == loss, "batch \(batch), bptt \(bptt)")
            #expect(result.dynamicPerplexity == result.staticPerplexity)
            #expect(result.count == count && count == ids.count - 1)
            #expect(result.options == options && result.divergedAfter == nil)
            let windows = (((ids.count - 1) + min(batch, ids.count - 1) - 1) / min(batch, ids.count - 1) + bptt - 1) / bptt
            #expect(result.updates == windows - 1, "batch \(batch), bptt \(bptt)")
        }
    }

    @Test("the caller's model keeps its parameters, hidden state and dropout generator")
    func callerUnchanged() throws {
        let corpus = try ModelIOFixture.trainingCorpus()
        // Dropout in the configuration: the adapting copy must take its gradients without it, the caller keeps it.
        let configuration = RNNLanguageModel.Configuration(vocabularySize: corpus.vocabulary.count, embeddingSize: 6,
                                                           hiddenSize: 6, layers: 2, cell: .gru, dropout: 0.5)
        let model = try RNNLanguageModel(configuration: configuration, seed: 3)
        _ = try model.logits(for: Array(corpus.ids.prefix(8)), batchSize: 2)  // a carried state to keep
        let tensors = model.namedTensors
        let state = model.state
        let generator = model.dropoutGenerator.state
        let ids = try ModelIOFixture.heldOutIDs(vocabulary: corpus.vocabulary)

        let result = try model.dynamicEvaluation(
            on: ids, options: DynamicEvaluationOptions(learningRate: 0.5, clipNorm: nil, batchSize: 2, bptt: 6))
        #expect(result.updates > 0)
        #expect(model.configuration == configuration)
        #expect(model.namedTensors == tensors)  // Tensor == compares every element bitwise
        #expect(model.state.count == state.count && zip(model.state, state).allSatisfy { $0 == $1 })
        #expect(model.dropoutGenerator.state == generator)
        // And the static loss is that of the unchanged model from a zero state.
        #expect(result.staticLoss == (try model.meanLoss(on: ids, batchSize: 2, bptt: 6)).loss)
    }

    @Test("adapting to a text the model has never seen lowers the perplexity", arguments: [
        DynamicEvaluationOptions(learningRate: 1, clipNorm: nil, batchSize: 1, bptt: 5),
        DynamicEvaluationOptions(batchSize: 1, bptt: 5),  // the defaults: clipped steps
        DynamicEvaluationOptions(learningRate: 0.05, clipNorm: 0.1, batchSize: 2, bptt: 3),
    ])
    func adaptingHelps(options: DynamicEvaluationOptions) throws {
        // Forced, not observed: every parameter is zero, so every hidden state is exactly 0 and the only non-zero
        // gradient is the output bias's, (p − onehot(target)) averaged over the window. On a text of one repeated
        // token a (never seen: the model has learnt nothing), each step raises the bias of a and lowers all
        // others, so p(a) rises strictly from window to window: the first window costs log V, every later one
        // less. The static loss is log V everywhere.
        let V = 7
        let model = try Self.zeroModel(vocabularySize: V)
        let ids = [Int32](repeating: 3, count: 41)
        let result = try model.dynamicEvaluation(on: ids, options: options)
        // log V up to the rounding of the softmax of equal logits (a few ulps of 1.9).
        #expect(abs(result.staticLoss - log(Double(V))) <= 1e-6)
        #expect(result.dynamicLoss < result.staticLoss, "dynamic \(result.dynamicLoss), static \(result.staticLoss)")
        #expect(result.dynamicPerplexity < result.staticPerplexity)
        #expect(result.divergedAfter == nil && result.count == 40)
        // The clip norm bounds every step; the unclipped gradient's norm here is ‖p − onehot‖ ≤ √2.
        if let clip = options.clipNorm, clip < 0.5 { #expect(result.clippedUpdates > 0) }
        if options.clipNorm == nil { #expect(result.clippedUpdates == 0) }
    }

    @Test("options out of range and too short a text throw invalidArgument", arguments: [
        DynamicEvaluationOptions(learningRate: -0.1),
        DynamicEvaluationOptions(learningRate: .nan),
        DynamicEvaluationOptions(learningRate: .infinity),
        DynamicEvaluationOptions(clipNorm: -1),
        DynamicEvaluationOptions(clipNorm: .nan),
        DynamicEvaluationOptions(clipNorm: .infinity),
        DynamicEvaluationOptions(batchSize: 0),
        DynamicEvaluationOptions(bptt: 0),
    ])
    func badOptionsThrow(options: DynamicEvaluationOptions) throws {
        let model = try Self.zeroModel(vocabularySize: 5)
        let tensors = model.namedTensors
        do {
            _ = try model.dynamicEvaluation(on: [0, 1, 2, 3, 4], options: options)
            Issue.record("no error for \(options)")
        } catch {
            guard case let .invalidArgument(message) = error else { Issue.record("\(error)"); return }
            let names = ["learning rate", "clip norm", "batch size"]
            #expect(names.contains { message.contains($0) }, "\(message)")
        }
        #expect(model.namedTensors == tensors)
        #expect(throws: RNNCoreError.self) { try model.dynamicEvaluation(on: [1], options: .init(learningRate: 0)) }
    }
}
