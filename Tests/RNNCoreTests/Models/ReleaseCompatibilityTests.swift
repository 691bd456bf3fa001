// Model files written by an earlier release must keep loading: the cell table renamed nothing a model file holds.
//
// Tests/RNNCoreTests/Fixtures/release-0.1/ holds two 2-layer models (tanh RNN and LSTM, D 4, H 5) written by
// `rnncore train --out` of RNNCore 0.1 (commit ce74d60, ABI 0), and the perplexity `rnncore eval` of that release
// gave on the text below. Tolerance 1e-5 relative: the perplexity is exp of a mean of 19 cross-entropies, each from
// sums of ≤ 10 float32 products per step, so another machine's kernels (FMA or not, other BLAS blocking) move it by
// a few float32 roundings (~1e-6 relative), never by 1e-5.

import Foundation
import RNNCore
import Testing

@Suite("Models: files written by release 0.1 still load")
struct ReleaseCompatibilityTests {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/release-0.1")
    static let text = "the cat sat on a mat\nand dog ran to log\na dog sat on the mat\n"

    @Test(arguments: [("rnn", CellKind.rnn, 11.933982898959762), ("lstm", CellKind.lstm, 11.807363479289613)])
    func modelFileLoadsAndEvaluatesAsBefore(_ name: String, _ cell: CellKind, _ perplexity: Double) throws {
        let (model, vocabulary) = try RNNLanguageModel.load(from: Self.folder.appendingPathComponent("\(name)-2layer.safetensors"))
        #expect(model.configuration == .init(vocabularySize: vocabulary.count, embeddingSize: 4, hiddenSize: 5,
                                             layers: 2, cell: cell))
        let ids = try vocabulary.encode(Self.text)
        expectApproximatelyEqual(try model.perplexity(on: ids), perplexity,
                                 tolerance: NumericsTolerance(absolute: 0, relative: 1e-5), "\(name) perplexity")
    }
}
