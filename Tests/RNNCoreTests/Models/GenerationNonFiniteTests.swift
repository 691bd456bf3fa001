// Generation refuses non-finite logits the way evaluation refuses a non-finite loss, and samples stably from huge
// finite ones. Every failure is forced (weights chosen so that any summation order overflows), never hoped for.

import Foundation
@testable import RNNCore
import Testing

@Suite("Models: generation with non-finite and huge logits")
struct GenerationNonFiniteTests {
    /// A 1-layer RNN (V 12, D 4, H 6) whose hidden state is tanh(1) > 0 in every unit for any input (wx = wh = 0,
    /// b = 1), with the output layer's weights and bias set as given.
    static func model(outputWeight: Float, outputBias: [Float]? = nil) throws -> RNNLanguageModel {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: 12, embeddingSize: 4, hiddenSize: 6)
        var tensors = try RNNLanguageModel(configuration: configuration, seed: 5).namedTensors
        tensors["rnn.0.wx"] = Tensor(zeros: [4, 6])
        tensors["rnn.0.wh"] = Tensor(zeros: [6, 6])
        tensors["rnn.0.b"] = try Tensor(shape: [6], scalars: Array(repeating: 1, count: 6))
        tensors["output.weight"] = try Tensor(shape: [6, 12], scalars: Array(repeating: outputWeight, count: 72))
        tensors["output.bias"] = try Tensor(shape: [12], scalars: outputBias ?? Array(repeating: 0, count: 12))
        return try RNNLanguageModel(configuration: configuration, tensors: tensors)
    }

    @Test("Output weights of 3e38 overflow the logits: generate stops with the error evaluation gives, naming the token")
    func hugeWeightsThrow() throws {
        // Every logit is 6 · tanh(1) · 3e38 ≈ 1.4e39: past Float's range in any order of summation.
        let model = try Self.model(outputWeight: 3e38)
        let evaluation = #expect(throws: RNNCoreError.self) {
            _ = try model.loss(ids: [0, 1, 2], targets: [1, 2, 3], batchSize: 1)
        }
        guard case .kernel(.nonFinite, _)? = evaluation else {
            Issue.record("evaluation: \(String(describing: evaluation))")
            return
        }
        let generation = #expect(throws: RNNCoreError.self) {
            _ = try model.generate(prompt: [0, 1], count: 20, options: SamplingOptions(seed: 3))
        }
        guard case let .kernel(status, operation)? = generation else {
            Issue.record("generation: \(String(describing: generation))")
            return
        }
        #expect(status == .nonFinite)
        #expect(operation.contains("token 1 of 20") && operation.contains("infinity at token id 0"), "\(operation)")
        #expect("\(generation!)".contains("not finite"), "\(generation!)")
        // Greedy decoding and top-k take the same check.
        #expect(throws: RNNCoreError.kernel(.nonFinite, operation: operation)) {
            _ = try model.generate(prompt: [0, 1], count: 20, options: SamplingOptions(temperature: 0))
        }
        #expect(throws: RNNCoreError.kernel(.nonFinite, operation: operation)) {
            _ = try model.generate(prompt: [0, 1], count: 20, options: SamplingOptions(topK: 3))
        }
        // Nothing to sample, nothing to refuse.
        #expect(try model.generate(prompt: [0], count: 0) == [])
    }

    @Test("A NaN in the output bias stops generation, naming the token id")
    func nanBiasThrows() throws {
        var bias = [Float](repeating: 0, count: 12)
        bias[7] = .nan
        let model = try Self.model(outputWeight: 0.1, outputBias: bias)
        let error = #expect(throws: RNNCoreError.self) {
            _ = try model.generate(prompt: [2], count: 5, options: SamplingOptions(excluded: [7]))
        }
        guard case let .kernel(.nonFinite, operation)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(operation.contains("token 1 of 5") && operation.contains("NaN at token id 7"), "\(operation)")
    }

    @Test("Logits of 1e30 everywhere sample every token, uniformly valid, without error")
    func hugeEqualLogitsSampleUniformly() throws {
        // Zero weights and a bias of 1e30: every logit is exactly 1e30 at every step.
        let model = try Self.model(outputWeight: 0, outputBias: Array(repeating: 1e30, count: 12))
        let ids = try model.generate(prompt: [0], count: 400, options: SamplingOptions(seed: 11))
        #expect(ids.count == 400)
        #expect(Set(ids) == Set(0..<12), "\(Set(ids).sorted())")
        let greedy = try model.generate(prompt: [0], count: 5, options: SamplingOptions(temperature: 0))
        #expect(greedy == [0, 0, 0, 0, 0])  // ties go to the smaller id
        let cold = try model.generate(prompt: [0], count: 50, options: SamplingOptions(temperature: 1e-6, topK: 4, seed: 2))
        #expect(cold.allSatisfy { (0..<4).contains($0) })
    }

    @Test("Sampling forms its weights as exp((z − max) / temperature): huge rows of both signs are stable")
    func samplingIsStableForHugeRows() {
        var rng = Xoshiro256StarStar(seed: 9)
        var row = [Float](repeating: -3e38, count: 8)
        row[5] = 3e38
        for temperature in [1e-30, 0.5, 1, 1e30] {
            let options = SamplingOptions(temperature: temperature)
            for _ in 0..<50 {
                let id = RNNLanguageModel.sample(logits: row, options: options, rng: &rng)
                // Even at temperature 1e30, (−3e38 − 3e38) / 1e30 = −6e8: the other tokens weigh exp(−6e8) = 0.
                #expect(id == 5, "temperature \(temperature)")
            }
        }
        let flat = [Float](repeating: 1e30, count: 5)
        var seen = Set<Int32>()
        for _ in 0..<200 { seen.insert(RNNLanguageModel.sample(logits: flat, options: .init(), rng: &rng)) }
        #expect(seen == Set(0..<5))
        var two = [Float](repeating: 1e30, count: 6)
        two[1] = -1e30
        two[4] = -1e30
        for _ in 0..<200 {
            let id = RNNLanguageModel.sample(logits: two, options: .init(), rng: &rng)
            #expect(id != 1 && id != 4)
        }
    }
}
