// `rnncore train --softmax adaptive --cutoffs … --div-value …` and `--tie-weights`: the options land in the settings
// record, a trained model evaluates (exactly the training-time test perplexity), generates and describes itself,
// and every bad combination is refused with the option's name and the reason.

import Foundation
import RNNCore
import Testing

@Suite("Tool: output-layer options of rnncore train")
struct OutputLayerToolTests {
    @Test("--softmax adaptive: train, then eval gives the training-time test perplexity; generate and info work")
    func adaptiveEndToEnd() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let run = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--valid", valid, "--test", test, "--embed", "8", "--hidden", "16",
                   "--batch", "4", "--bptt", "5", "--epochs", "1", "--softmax", "adaptive", "--cutoffs", "4,8",
                   "--div-value", "2", "--out", "m.safetensors", "--json"], in: scratch.url)
        try #require(run.exited && run.status == 0, "\(run)")
        let metrics = try #require(ToolTestFixture.jsonObject(run))
        let trainingTest = try #require(metrics["test_perplexity"] as? Double)
        let settings = try JSONDecoder().decode(
            TrainingSettings.self, from: JSONSerialization.data(withJSONObject: try #require(metrics["settings"])))
        #expect(settings.model.softmax == .adaptive && settings.model.cutoffs == [4, 8] && settings.model.divValue == 2)
        #expect(run.stderr.contains("adaptive softmax (cutoffs 4,8, div value 2)") || run.stdout.contains("adaptive softmax (cutoffs 4,8, div value 2)"))

        let (model, vocabulary) = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("m.safetensors"))
        #expect(model.configuration.softmax == .adaptive && model.configuration.tailProjectionSizes == [8, 4])
        // New runs number the vocabulary by training-set frequency: <eos> ends every sentence, so it is among the
        // most frequent tokens of this text and inside the head.
        #expect(try #require(vocabulary.id(of: Vocabulary.endOfSentenceToken)) < 4)

        let eval = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test, "--json"], in: scratch.url)
        try #require(eval.exited && eval.status == 0, "\(eval)")
        let evaluated = try #require(ToolTestFixture.jsonObject(eval)?["perplexity"] as? Double)
        // The same float32 computation on the same machine (batch 1, windows of 35); only the JSON printing of the
        // two doubles lies between them.
        #expect(abs(evaluated - trainingTest) <= 1e-12 * trainingTest, "eval \(evaluated), training-time \(trainingTest)")

        let generate = try ToolTestRunner.run(tool, ["generate", "--model", "m.safetensors", "--count", "12", "--seed", "3"],
                                              in: scratch.url)
        #expect(generate.exited && generate.status == 0, "\(generate)")
        #expect(generate.stdout.split(whereSeparator: \.isWhitespace).count >= 1)

        let info = try ToolTestRunner.run(tool, ["info", "--model", "m.safetensors", "--json"], in: scratch.url)
        try #require(info.exited && info.status == 0, "\(info)")
        let object = try #require(ToolTestFixture.jsonObject(info))
        #expect(object["softmax"] as? String == "adaptive" && object["cutoffs"] as? [Int] == [4, 8])
    }

    @Test("--tie-weights: one tensor for embedding and output, and a model that evaluates")
    func tiedEndToEnd() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let run = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--embed", "12", "--hidden", "12", "--cell", "lstm", "--batch", "4",
                   "--bptt", "5", "--epochs", "1", "--tie-weights", "--out", "m.safetensors"], in: scratch.url)
        try #require(run.exited && run.status == 0, "\(run)")
        let file = try SafeTensorsFile.read(from: scratch.url.appendingPathComponent("m.safetensors"))
        #expect(file.tensors["output.weight"] == nil && file.tensors["embedding.weight"] != nil)
        let eval = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test], in: scratch.url)
        #expect(eval.exited && eval.status == 0, "\(eval)")
    }

    @Test("Bad output-layer options are refused with the option's name and the reason", arguments: [
        (["--tie-weights", "--embed", "8", "--hidden", "16"], "--tie-weights needs a trained embedding with embedding size = hidden size"),
        (["--tie-weights", "--embed", "8", "--hidden", "8", "--softmax", "adaptive"], "--tie-weights needs the full softmax"),
        (["--cutoffs", "4,8"], "--cutoffs apply only to the adaptive softmax"),
        (["--softmax", "adaptive", "--cutoffs", "8,4"], "--cutoffs must be positive and strictly increasing"),
        (["--softmax", "adaptive", "--cutoffs", "0"], "--cutoffs must be positive and strictly increasing"),
        (["--softmax", "adaptive", "--cutoffs", "4,x"], "--cutoffs"),
        (["--softmax", "adaptive", "--div-value", "0.5"], "--div-value must be a finite number of at least 1"),
        (["--softmax", "adaptive", "--cutoffs", "100000"], "below the vocabulary size"),
        (["--softmax", "adaptive", "--cutoffs", "2,4,6,8", "--hidden", "8"], "= 0 units"),
        (["--softmax", "bogus"], "--softmax"),
    ])
    func refusals(arguments: [String], message: String) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let run = try ToolTestRunner.run(tool, ["train", "--train", train, "--epochs", "1", "--batch", "2", "--bptt", "4"] + arguments,
                                         in: scratch.url)
        #expect(run.exited && run.status != 0, "\(run)")
        #expect(run.stderr.contains(message), "\(run)")
        #expect(!run.stderr.contains("Fatal error"), "\(run)")
    }
}
