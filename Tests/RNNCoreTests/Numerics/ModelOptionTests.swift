// The language model's options beyond the textbook: dropout, truncation inside the window, one-hot inputs, and
// the LSTM cell through a checkpoint.

import Foundation
import RNNCore
import Testing

@Suite("Numerics: language model options")
struct ModelOptionTests {
    static let (N, T) = (2, 6)

    static func model(_ cell: CellKind = .lstm, dropout: Float = 0, input: InputEncoding = .embedding,
                      layers: Int = 2, seed: UInt64 = 3) throws -> RNNLanguageModel {
        try RNNLanguageModel(configuration: .init(vocabularySize: 7, embeddingSize: 4, hiddenSize: 5, layers: layers,
                                                  cell: cell, dropout: dropout, input: input), seed: seed)
    }

    static func gradients(_ model: RNNLanguageModel, _ ids: [Int32], _ targets: [Int32]) throws -> (Double, [[Float]]) {
        model.resetState()
        model.parameters.zeroGradients()
        let (loss, _) = try model.lossAndGradients(ids: ids, targets: targets, batchSize: N)
        return (loss, model.parameters.map(\.gradient.scalars))
    }

    @Test(arguments: CellKind.allCases)
    func dropoutIsOffInEvaluationAndOnInTraining(_ cell: CellKind) throws {
        let plain = try Self.model(cell), dropped = try Self.model(cell, dropout: 0.5)
        var data = NumericsData(seed: 1)
        let (ids, targets) = (data.ids(Self.N * Self.T, below: 7), data.ids(Self.N * Self.T, below: 7))
        // Same seed, same weights; evaluation never drops anything: bit-identical losses.
        plain.resetState()
        dropped.resetState()
        #expect(try plain.loss(ids: ids, targets: targets, batchSize: Self.N).loss
                == dropped.loss(ids: ids, targets: targets, batchSize: Self.N).loss)
        // Training does: the loss moves, and two draws of the mask differ.
        let (clean, _) = try Self.gradients(plain, ids, targets)
        let (first, _) = try Self.gradients(dropped, ids, targets)
        let (second, _) = try Self.gradients(dropped, ids, targets)
        #expect(first != clean)
        #expect(first != second)
    }

    /// With the dropout generator rewound before each evaluation the masks are fixed, so the loss is a smooth
    /// function of the weights and its central differences (eps 1e-2, tolerances as in NumericModelTests) must
    /// match the analytic gradient, masks included. Not for the relu RNN: float32 central differences need ε =
    /// 1e-2, which steps over the relu's kink wherever a pre-activation lies within 1e-2 of 0 (the relu's
    /// gradients are checked in double precision with ε = 1e-5 in RecurrentNetworkTests and tests/test_rnn.c; the
    /// masks are the same for every cell).
    @Test(arguments: CellKind.allCases.filter { $0 != .rnnRelu })
    func dropoutGradientsMatchCentralDifferences(_ cell: CellKind) throws {
        let model = try Self.model(cell, dropout: 0.3)
        var data = NumericsData(seed: 2)
        let (ids, targets) = (data.ids(Self.N * Self.T, below: 7), data.ids(Self.N * Self.T, below: 7))
        let start = model.dropoutGenerator
        let (_, analytic) = try Self.gradients(model, ids, targets)
        let eps: Float = 1e-2
        for (k, p) in model.parameters.enumerated() {
            let g = analytic[k]
            let largest = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            var indices: Set<Int> = [0, p.value.count - 1, largest]
            for _ in 0..<4 { indices.insert(data.rng.nextInt(below: p.value.count)) }
            for i in indices.sorted() {
                let original = p.value[flat: i]
                func loss(_ v: Float) throws -> Double {
                    p.value[flat: i] = v
                    model.dropoutGenerator = start
                    model.resetState()
                    return try model.lossAndGradients(ids: ids, targets: targets, batchSize: Self.N).loss
                }
                let numeric = (try loss(original + eps) - loss(original - eps)) / Double(2 * eps)
                p.value[flat: i] = original
                expectApproximatelyEqual(Double(g[i]), numeric, tolerance: NumericModelTests.centralDifference,
                                         "∂L/∂\(p.name)[\(i)] with dropout (\(cell))")
            }
        }
    }

    @Test(arguments: CellKind.allCases)
    func truncationOfTheWholeWindowIsFullBackpropagation(_ cell: CellKind) throws {
        let model = try Self.model(cell)
        var data = NumericsData(seed: 4)
        let (ids, targets) = (data.ids(Self.N * Self.T, below: 7), data.ids(Self.N * Self.T, below: 7))
        let (loss0, full) = try Self.gradients(model, ids, targets)
        for k in [Self.T, Self.T + 5] {
            model.truncation = k
            let (loss, g) = try Self.gradients(model, ids, targets)
            #expect(loss == loss0)
            #expect(g == full, "truncation \(k) must equal full BPTT bit for bit")
        }
        // A shorter limit cuts the recurrent paths only: the output layer's gradient stays, the recurrent
        // weights' changes.
        model.truncation = 2
        let (_, cut) = try Self.gradients(model, ids, targets)
        let names = model.parameters.map(\.name)
        for (name, (a, b)) in zip(names, zip(full, cut)) {
            if name.hasPrefix("output.") { #expect(a == b, "\(name) must not depend on the truncation") }
            if name.hasSuffix(".wh") { #expect(a != b, "\(name) must change when errors stop after 2 steps") }
        }
        model.truncation = -1
        expectRNNCoreError(.invalidArgument) { _ = try Self.gradients(model, ids, targets) }
    }

    @Test func oneHotInputsEqualAnIdentityEmbeddingAndTrainNoTable() throws {
        let oneHot = try Self.model(.rnn, input: .oneHot, layers: 1)
        #expect(oneHot.configuration.embeddingSize == 7)
        #expect(!oneHot.parameters.contains { $0.name.hasPrefix("embedding") })
        // The same network with a trained table that happens to be the identity.
        var tensors = oneHot.namedTensors
        var identity = Tensor(zeros: [7, 7])
        for v in 0..<7 { identity[flat: v * 7 + v] = 1 }
        tensors["embedding.weight"] = identity
        let embedded = try RNNLanguageModel(configuration: .init(vocabularySize: 7, embeddingSize: 7, hiddenSize: 5),
                                            tensors: tensors)
        var data = NumericsData(seed: 5)
        let ids = data.ids(Self.N * Self.T, below: 7)
        oneHot.resetState()
        embedded.resetState()
        #expect(try oneHot.logits(for: ids, batchSize: Self.N).scalars == embedded.logits(for: ids, batchSize: Self.N).scalars)
        expectRNNCoreError(.invalidArgument) {
            _ = try RNNLanguageModel(configuration: .init(vocabularySize: RNNLanguageModel.Configuration.oneHotLimit + 1,
                                                          input: .oneHot), seed: 1)
        }
    }

    @Test(arguments: [(CellKind.lstm, InputEncoding.embedding), (.lstm, .oneHot), (.rnn, .oneHot)])
    func checkpointsKeepCellInputAndDropout(_ kind: (cell: CellKind, input: InputEncoding)) throws {
        let model = try Self.model(kind.cell, dropout: 0.25, input: kind.input)
        let corpus = try Corpus(text: "abcdef\n", level: .character)
        #expect(corpus.vocabulary.count == 7)
        let scratch = try ModelIOScratchDirectory()
        let url = scratch.file("lstm.safetensors")
        try model.save(to: url, vocabulary: corpus.vocabulary)
        let (loaded, _) = try RNNLanguageModel.load(from: url)
        #expect(loaded.configuration == model.configuration)
        var data = NumericsData(seed: 6)
        let ids = data.ids(Self.N * Self.T, below: 7)
        model.resetState()
        #expect(try loaded.logits(for: ids, batchSize: Self.N).scalars == model.logits(for: ids, batchSize: Self.N).scalars)
    }

    @Test func configurationsWrittenBeforeCellsExistedDecodeAsTanhRNN() throws {
        let json = #"{"vocabularySize": 5, "embeddingSize": 3, "hiddenSize": 4, "layers": 1}"#
        let c = try JSONDecoder().decode(RNNLanguageModel.Configuration.self, from: Data(json.utf8))
        #expect(c == .init(vocabularySize: 5, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: .rnn, dropout: 0))
    }
}
