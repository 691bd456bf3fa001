// `rnncore export`: a trained model's weights as a PyTorch state dict, read back with the library's importer.

import Foundation
import RNNCore
import Testing

@Suite("Tool: rnncore export")
struct ExportToolTests {
    @Test("export writes a word_language_model state dict that imports to a model with the same logits", arguments: ["lstm", "gru", "rnn"])
    func exportRoundTrip(cell: String) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let trained = try ToolTestRunner.run(tool, ["train", "--train", train, "--valid", valid, "--cell", cell, "--layers", "2"]
            + ToolTests.tinyModel + ["--out", "m.safetensors"], in: scratch.url)
        try #require(trained.exited && trained.status == 0, "\(trained)")

        let exported = try ToolTestRunner.run(tool, ["export", "--model", "m.safetensors", "--pytorch", "pt.safetensors"], in: scratch.url)
        try #require(exported.exited && exported.status == 0, "\(exported)")
        #expect(exported.stdout.contains("RNNModel("), "\(exported)")

        let (model, vocabulary) = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("m.safetensors"))
        let imported = try RNNLanguageModel.load(pyTorchWordLanguageModel: scratch.url.appendingPathComponent("pt.safetensors"),
                                                 cell: model.configuration.cell)
        #expect(imported.configuration.cell == model.configuration.cell)
        #expect(imported.configuration.layers == 2)
        let ids = try Corpus(text: ToolTestFixture.words(sentences: 6, seed: 9), vocabulary: vocabulary).ids
        let ours = try model.logits(for: ids, batchSize: 1).scalars
        let theirs = try imported.logits(for: ids, batchSize: 1).scalars
        #expect(ours.count == theirs.count && ours.count == ids.count * vocabulary.count)
        let worst = zip(ours, theirs).map { abs($0 - $1) / max(abs($0), 1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "largest relative logit difference \(worst)")

        // --module rnn: the bare recurrent module, which the library's RecurrentNetwork importer reads.
        let bare = try ToolTestRunner.run(tool, ["export", "--model", "m.safetensors", "--pytorch", "rnn.safetensors",
                                                 "--module", "rnn", "--prefix", "lm.rnn."], in: scratch.url)
        try #require(bare.exited && bare.status == 0, "\(bare)")
        let network = try RecurrentNetwork.load(pyTorchSafeTensors: scratch.url.appendingPathComponent("rnn.safetensors"),
                                                prefix: "lm.rnn.", cell: model.configuration.cell)
        #expect(network.pyTorchStateDict(prefix: "lm.rnn.").mapValues(\.scalars)
                == model.network.pyTorchStateDict(prefix: "lm.rnn.").mapValues(\.scalars))
    }

    @Test("export refuses to overwrite its input, directly or through a link, and leaves it intact")
    func refusesToOverwriteInput() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let model = try ToolTestFixture.writeCheckpoint(tokens: ["a", "b", "<eos>"], to: "m.safetensors", in: scratch)
        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link.safetensors"), withDestinationPath: model)
        for output in ["m.safetensors", "./m.safetensors", "link.safetensors"] {
            let result = try ToolTestRunner.run(tool, ["export", "--model", "m.safetensors", "--pytorch", output], in: scratch.url)
            #expect(result.exited && result.status != 0, "\(result)")
            #expect(result.stderr.contains("is the model file"), "\(result)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == before)

        let missing = try ToolTestRunner.run(tool, ["export", "--model", "absent.safetensors", "--pytorch", "pt.safetensors"], in: scratch.url)
        #expect(missing.exited && missing.status != 0 && missing.stderr.contains("absent.safetensors"), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("pt.safetensors")))
    }
}
