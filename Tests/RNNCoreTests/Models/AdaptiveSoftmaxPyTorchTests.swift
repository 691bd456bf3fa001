// Import of PyTorch's word-level language model with an nn.AdaptiveLogSoftmaxWithLoss decoder, against the fixture
// word_language_model_adaptive written by examples/pytorch/make_fixtures.py (V = 13, E = H = 6, one batch-first LSTM
// layer, cutoffs [4, 8], div_value 2, head_bias=True; ids and targets (2, 5)).
//
// Tolerance `pyTorch`, 1e-5 + 1e-5·|ref| (u = 2⁻²⁴ ≈ 6e-8): the fixture holds the module's float64 computation from
// float32 weights, rounded once to float32, so every difference is RNNCore's own float32 rounding. The hidden states
// come from T = 5 LSTM steps of sums of ≤ 12 products (~1e-6 at worst, as in RecurrentNetworkTests); a log-probability
// is a head log-softmax over 6 scores plus, in a tail, a projection (≤ 6 products) and a log-softmax over ≤ 5 scores,
// a few u more on values of magnitude ≤ ~5; the loss is the mean of 10 of them. Observed (RNNCORE_NUMERICS_LOG=1):
// log_prob max abs 2.4e-7 (0.8% of the tolerance), loss 1.7e-8 (0.04%).
// Export: decoder and encoder tensors and the recurrent weights are copied and transposed twice, so they are
// compared exactly; RNNCore keeps one recurrent bias, so the exported bias_ih_l0 is the float32 sum
// bias_ih_l0 + bias_hh_l0 (one correctly rounded addition) and bias_hh_l0 is zeros.

import Foundation
import RNNCore
import Testing

@Suite("Models: adaptive softmax PyTorch import")
struct AdaptiveSoftmaxPyTorchTests {
    /// Float32 against PyTorch's float64 computation (see the file comment).
    static let pyTorch = NumericsTolerance(absolute: 1e-5, relative: 1e-5)

    @Test func adaptiveWordLanguageModelMatchesPyTorch() throws {
        let url = PyTorchFixtures.url("word_language_model_adaptive")
        let file = try SafeTensorsFile.read(from: url)
        let model = try RNNLanguageModel.load(pyTorchWordLanguageModel: url, prefix: "model.")
        let c = model.configuration
        #expect(c.vocabularySize == 13 && c.embeddingSize == 6 && c.hiddenSize == 6 && c.layers == 1 && c.cell == .lstm)
        #expect(c.softmax == .adaptive)
        #expect(c.cutoffs == [4, 8])
        #expect(c.divValue == 2)
        #expect(c.tailProjectionSizes == [3, 1])
        #expect(!c.tiedWeights)

        let ids = try #require(file.tensors["ids"]?.int32s)
        let targets = try #require(file.tensors["targets"]?.int32s)
        let logProb = try model.logits(for: ids, batchSize: 2)
        #expect(logProb.shape == [2, 5, 13])
        expectApproximatelyEqual(logProb, try PyTorchFixtures.tensor(file, "log_prob").widenedScalars,
                                 tolerance: Self.pyTorch, "adaptive word language model log_prob")

        model.resetState()
        let (loss, count) = try model.loss(ids: ids, targets: targets, batchSize: 2)
        #expect(count == 10)
        let expectedLoss = try #require(try PyTorchFixtures.tensor(file, "loss").widenedScalars.first)
        expectApproximatelyEqual(loss, expectedLoss, tolerance: Self.pyTorch, "adaptive word language model loss")
    }

    @Test func adaptiveWordLanguageModelExportsTheFixtureTensors() throws {
        let url = PyTorchFixtures.url("word_language_model_adaptive")
        let file = try SafeTensorsFile.read(from: url)
        let model = try RNNLanguageModel.load(pyTorchWordLanguageModel: url, prefix: "model.")
        let exported = model.pyTorchWordLanguageModelStateDict(prefix: "model.")
        let modelNames = file.tensors.keys.filter { $0.hasPrefix("model.") }.sorted()
        #expect(exported.keys.sorted() == modelNames)
        for name in modelNames where !name.hasPrefix("model.rnn.bias") {
            #expect(exported[name] == (try PyTorchFixtures.tensor(file, name)), "\(name)")
        }
        let bih = try PyTorchFixtures.tensor(file, "model.rnn.bias_ih_l0")
        let bhh = try PyTorchFixtures.tensor(file, "model.rnn.bias_hh_l0")
        let sum = try Tensor(shape: bih.shape, scalars: zip(bih.scalars, bhh.scalars).map { $0 + $1 })
        #expect(exported["model.rnn.bias_ih_l0"] == sum)
        #expect(exported["model.rnn.bias_hh_l0"] == Tensor(zeros: bhh.shape))
    }
}
