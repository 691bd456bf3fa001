// The language model's output layers: tied weights against the untied model with the same values, the adaptive
// softmax's normalisation, loss and gradients, checkpoints and PyTorch state dicts of both, the configuration's
// refusals, and the frequency order of the vocabulary.

import Foundation
@testable import RNNCore
import Testing

@Suite("Output layers: tied weights and the adaptive softmax")
struct OutputLayerTests {
    static func window(_ V: Int, count: Int, seed: UInt64) -> (ids: [Int32], targets: [Int32]) {
        var rng = Xoshiro256StarStar(seed: seed)
        return ((0..<count).map { _ in Int32(rng.nextInt(below: V)) }, (0..<count).map { _ in Int32(rng.nextInt(below: V)) })
    }

    static func doubles(_ t: Tensor) -> [Double] { t.scalars.map(Double.init) }

    /// An adaptive model over 12 words: head 0..<4 (+2 cluster entries), clusters 4..<8 (P 3) and 8..<12 (P 1).
    static func adaptiveModel(cell: CellKind = .rnn, seed: UInt64 = 3) throws -> RNNLanguageModel {
        try RNNLanguageModel(configuration: .init(vocabularySize: 12, embeddingSize: 5, hiddenSize: 6, cell: cell,
                                                  softmax: .adaptive, cutoffs: [4, 8], divValue: 2), seed: seed)
    }

    // MARK: Tied weights

    /// The tied model computes x·Eᵀ with a transposed GEMM and the untied one x·W with W = Eᵀ copied: the same
    /// products summed in possibly another order, so a few float32 roundings apart (values ≤ 1: 1e-6 absolute).
    /// The embedding's gradient must be the sum of the untied model's embedding gradient and its output
    /// gradient transposed (each a sum of ≤ 12 rounded terms).
    @Test("Tied weights: the loss of the untied model with W = Eᵀ, and the sum of both gradients", arguments: [CellKind.rnn, .lstm])
    func tiedMatchesUntied(cell: CellKind) throws {
        let config = RNNLanguageModel.Configuration(vocabularySize: 9, embeddingSize: 5, hiddenSize: 5, cell: cell,
                                                    tiedWeights: true)
        let tied = try RNNLanguageModel(configuration: config, seed: 11)
        var tensors = tied.namedTensors
        #expect(tensors["output.weight"] == nil)
        tensors["output.weight"] = tensors["embedding.weight"]!.matrixTranspose()
        var untiedConfig = config
        untiedConfig.tiedWeights = false
        let untied = try RNNLanguageModel(configuration: untiedConfig, tensors: tensors)
        #expect(tied.parameters.count == untied.parameters.count - 1)

        let (ids, targets) = Self.window(9, count: 12, seed: 5)
        tied.parameters.zeroGradients()
        untied.parameters.zeroGradients()
        let a = try tied.lossAndGradients(ids: ids, targets: targets, batchSize: 3)
        let b = try untied.lossAndGradients(ids: ids, targets: targets, batchSize: 3)
        let tolerance = NumericsTolerance(absolute: 1e-6, relative: 1e-5)
        #expect(isApproximatelyEqual(a.loss, to: b.loss, tolerance: tolerance), "\(a.loss) vs \(b.loss)")
        let tiedGradients = Dictionary(uniqueKeysWithValues: tied.parameters.map { ($0.name, $0.gradient) })
        let untiedGradients = Dictionary(uniqueKeysWithValues: untied.parameters.map { ($0.name, $0.gradient) })
        let summed = zip(untiedGradients["embedding.weight"]!.scalars,
                         untiedGradients["output.weight"]!.matrixTranspose().scalars).map { Double($0) + Double($1) }
        expectApproximatelyEqual(Self.doubles(tiedGradients["embedding.weight"]!), summed, tolerance: tolerance,
                                 "tied embedding gradient = embedding + output gradients")
        for (name, gradient) in tiedGradients where name != "embedding.weight" {
            expectApproximatelyEqual(Self.doubles(gradient), Self.doubles(untiedGradients[name]!), tolerance: tolerance, name)
        }
    }

    @Test("A tied model stores one tensor for both uses, and its checkpoint and PyTorch state dict round-trip")
    func tiedCheckpoint() throws {
        let config = RNNLanguageModel.Configuration(vocabularySize: 7, embeddingSize: 4, hiddenSize: 4, layers: 2,
                                                    cell: .lstm, tiedWeights: true)
        let model = try RNNLanguageModel(configuration: config, seed: 2)
        #expect(!config.parameterShapes.contains { $0.name == "output.weight" })
        let vocabulary = try Vocabulary(tokens: (0..<7).map { "w\($0)" }, level: .word)
        let scratch = try ModelIOScratchDirectory()
        let url = scratch.file("model.safetensors")
        try model.save(to: url, vocabulary: vocabulary)
        let file = try SafeTensorsFile.read(from: url)
        #expect(file.tensors["output.weight"] == nil)
        let (loaded, _) = try RNNLanguageModel.load(from: url)
        #expect(loaded.configuration == config)
        #expect(loaded.namedTensors == model.namedTensors)

        let dict = model.pyTorchWordLanguageModelStateDict()
        #expect(dict["decoder.weight"] == dict["encoder.weight"])
        let imported = try RNNLanguageModel(pyTorchWordLanguageModel: dict)
        #expect(imported.configuration == config)
        #expect(imported.namedTensors == model.namedTensors)
        var withoutDuplicate = dict
        withoutDuplicate["decoder.weight"] = nil  // as safetensors stores a shared tensor
        #expect(try RNNLanguageModel(pyTorchWordLanguageModel: withoutDuplicate).configuration.tiedWeights)
    }

    // MARK: Adaptive softmax

    /// exp of the scores sums to 1 per row within float32 rounding of 12 terms (1e-5), and the loss is the mean of
    /// −log p at the targets: the same float32 log-probabilities, summed in double (1e-5 relative).
    @Test("Adaptive softmax: rows of probabilities sum to 1 and the loss is the mean −log p of the targets")
    func adaptiveNormalised() throws {
        let model = try Self.adaptiveModel()
        let (ids, targets) = Self.window(12, count: 20, seed: 8)
        let scores = try model.logits(for: ids, batchSize: 4)
        #expect(scores.shape == [4, 5, 12])
        let values = scores.scalars
        var meanNegativeLog = 0.0
        for m in 0..<20 {
            let row = values[(m * 12)..<((m + 1) * 12)]
            let total = row.reduce(0.0) { $0 + exp(Double($1)) }
            #expect(abs(total - 1) < 1e-5, "row \(m) sums to \(total)")
            meanNegativeLog -= Double(row[m * 12 + Int(targets[m])]) / 20
        }
        model.resetState()
        let (loss, count) = try model.loss(ids: ids, targets: targets, batchSize: 4)
        #expect(count == 20)
        #expect(isApproximatelyEqual(loss, to: meanNegativeLog, tolerance: .init(absolute: 1e-6, relative: 1e-5)),
                "loss \(loss), mean −log p \(meanNegativeLog)")
    }

    /// Central differences of the float32 loss with eps = 1e-2, as the model tests do (see
    /// NumericModelTests.centralDifference for the tolerance's derivation), for every output-layer parameter
    /// and the embedding (whose gradient flows back through the head and both tails).
    @Test("Adaptive softmax: the model's gradients match central differences", arguments: [CellKind.rnn, .gru])
    func adaptiveGradients(cell: CellKind) throws {
        let model = try Self.adaptiveModel(cell: cell)
        // Targets in the head and in both clusters.
        let ids: [Int32] = [0, 5, 9, 2, 7, 11, 3, 1, 4, 10, 6, 8]
        let targets: [Int32] = [5, 9, 2, 7, 11, 3, 1, 4, 10, 6, 8, 0]
        model.parameters.zeroGradients()
        model.resetState()
        _ = try model.lossAndGradients(ids: ids, targets: targets, batchSize: 2)
        let eps: Float = 1e-2
        for parameter in model.parameters where parameter.name.hasPrefix("output") || parameter.name == "embedding.weight" {
            let analytic = Self.doubles(parameter.gradient)
            var numeric: [Double] = []
            for i in 0..<parameter.value.count {
                let x = parameter.value[flat: i]
                parameter.value[flat: i] = x + eps
                model.resetState()
                let up = try model.loss(ids: ids, targets: targets, batchSize: 2).loss
                parameter.value[flat: i] = x - eps
                model.resetState()
                let down = try model.loss(ids: ids, targets: targets, batchSize: 2).loss
                parameter.value[flat: i] = x
                numeric.append((up - down) / Double(2 * eps))
            }
            expectApproximatelyEqual(analytic, numeric, tolerance: NumericModelTests.centralDifference,
                                     "\(cell.rawValue) ∂L/∂\(parameter.name)")
        }
    }

    @Test("Adaptive softmax: checkpoints and PyTorch's AdaptiveLogSoftmaxWithLoss names round-trip")
    func adaptiveRoundTrip() throws {
        let model = try Self.adaptiveModel(cell: .lstm)
        #expect(model.parameters.map(\.name).filter { $0.hasPrefix("output") } == [
            "output.head.weight", "output.head.bias", "output.tail.0.projection", "output.tail.0.weight",
            "output.tail.1.projection", "output.tail.1.weight",
        ])
        let shapes = Dictionary(uniqueKeysWithValues: model.configuration.parameterShapes.map { ($0.name, $0.shape) })
        #expect(shapes["output.head.weight"] == [6, 6] && shapes["output.tail.0.projection"] == [6, 3]
                && shapes["output.tail.0.weight"] == [3, 4] && shapes["output.tail.1.projection"] == [6, 1])
        let vocabulary = try Vocabulary(tokens: (0..<12).map { "w\($0)" }, level: .word)
        let scratch = try ModelIOScratchDirectory()
        let url = scratch.file("model.safetensors")
        try model.save(to: url, vocabulary: vocabulary)
        let (loaded, _) = try RNNLanguageModel.load(from: url)
        #expect(loaded.configuration == model.configuration)
        #expect(loaded.namedTensors == model.namedTensors)

        let dict = model.pyTorchWordLanguageModelStateDict()
        #expect(dict["decoder.head.weight"]?.shape == [6, 6])
        #expect(dict["decoder.tail.0.0.weight"]?.shape == [3, 6])
        #expect(dict["decoder.tail.1.1.weight"]?.shape == [4, 1])
        let imported = try RNNLanguageModel(pyTorchWordLanguageModel: dict)
        #expect(imported.configuration == model.configuration)
        #expect(imported.namedTensors == model.namedTensors)
        var noBias = dict
        noBias["decoder.head.bias"] = nil  // PyTorch's default head_bias=False
        let zeroBias = try RNNLanguageModel(pyTorchWordLanguageModel: noBias)
        #expect(zeroBias.namedTensors["output.head.bias"] == Tensor(zeros: [6]))
        var extra = dict
        extra["decoder.tail.0.2.weight"] = Tensor(zeros: [1, 1])
        #expect(throws: PyTorchImportError.unexpectedTensor(name: "decoder.tail.0.2.weight")) {
            try RNNLanguageModel(pyTorchWordLanguageModel: extra)
        }
    }

    // MARK: Refusals

    @Test("Configurations the output layers cannot have are refused with the reason", arguments: [
        (RNNLanguageModel.Configuration(vocabularySize: 9, embeddingSize: 4, hiddenSize: 5, tiedWeights: true), "embedding size = hidden size"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, embeddingSize: 5, hiddenSize: 5, softmax: .adaptive, cutoffs: [3], tiedWeights: true), "full softmax"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, softmax: .adaptive, cutoffs: [5, 3]), "increase strictly"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, softmax: .adaptive, cutoffs: [3, 9]), "below the vocabulary size 9"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, softmax: .adaptive, cutoffs: [0, 3]), "increase strictly"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, softmax: .adaptive, cutoffs: []), "at least one cutoff"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, hiddenSize: 8, softmax: .adaptive, cutoffs: [2, 4], divValue: 4), "= 0 units"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, softmax: .adaptive, cutoffs: [3], divValue: .nan), "div value"),
        (RNNLanguageModel.Configuration(vocabularySize: 9, softmax: .full, cutoffs: [3]), "full softmax"),
    ])
    func refusals(configuration: RNNLanguageModel.Configuration, reason: String) {
        #expect {
            try configuration.validate()
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    // MARK: Frequency order

    @Test("Frequency order: the most frequent token gets id 0, ties keep their order, the text is unchanged")
    func frequencyOrder() throws {
        let corpus = try Corpus(text: "b a c a b a d\n", level: .word)
        let ordered = corpus.orderedByFrequency()
        #expect(ordered.vocabulary.tokens.prefix(2) == ["a", "b"])
        #expect(ordered.text == corpus.text)
        // c, d and <eos> appear once each: they keep their order of first appearance.
        #expect(Array(ordered.vocabulary.tokens.dropFirst(2)) == ["c", "d", Vocabulary.endOfSentenceToken])
        let back = try #require(ordered.renumbered(as: corpus.vocabulary))
        #expect(back == corpus)
        let other = try Vocabulary(tokens: ["a", "b", "c", "x", "<eos>"], level: .word)
        #expect(ordered.renumbered(as: other) == nil)
    }
}
