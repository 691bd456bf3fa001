// `rnncore eval --dynamic`: the static and the dynamic perplexity in one JSON object, the model file untouched.

import Foundation
import RNNCore
import Testing

@Suite("Tool: rnncore eval --dynamic")
struct DynamicEvaluationToolTests {
    @Test("eval --dynamic --json reports both perplexities; rate 0 gives the static one; the model file is unchanged")
    func dynamicJSON() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let trained = try ToolTestRunner.run(tool, ["train", "--train", train, "--valid", valid, "--dropout", "0.3"]
            + ToolTests.tinyModel + ["--out", "m.safetensors"], in: scratch.url)
        try #require(trained.exited && trained.status == 0, "\(trained)")
        let modelURL = scratch.url.appendingPathComponent("m.safetensors")
        let before = try Data(contentsOf: modelURL)

        let plain = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test, "--json"], in: scratch.url)
        try #require(plain.exited && plain.status == 0, "\(plain)")
        let plainObject = try #require(ToolTestFixture.jsonObject(plain))
        let staticPerplexity = try #require(ToolTestFixture.number(plainObject, "perplexity"))

        // The defaults: batch 1, bptt 35, the library's default rate and clip.
        let dynamic = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test, "--dynamic", "--json"], in: scratch.url)
        try #require(dynamic.exited && dynamic.status == 0, "\(dynamic)")
        #expect(dynamic.stdout.split(separator: "\n").count == 1, "with --json, standard output holds only the JSON line")
        let object = try #require(ToolTestFixture.jsonObject(dynamic))
        // The same evaluation of the same file in the same build: the same double, printed the same way.
        #expect(ToolTestFixture.number(object, "perplexity") == staticPerplexity)
        let adapted = try #require(ToolTestFixture.number(object, "dynamic_perplexity"))
        #expect(adapted.isFinite && adapted > 0)
        // Foundation's JSON reading may round the last digit of a 17-digit number: 1e-12 relative is far above
        // that and far below the gap to any other float.
        let rate = try #require(ToolTestFixture.number(object, "dynamic_lr"))
        let defaultRate = Double(DynamicEvaluationOptions.defaultLearningRate)
        #expect(abs(rate - defaultRate) <= 1e-12 * defaultRate, "\(rate)")
        #expect(ToolTestFixture.number(object, "dynamic_clip") == DynamicEvaluationOptions.defaultClipNorm)
        #expect(ToolTestFixture.number(object, "batch") == 1 && ToolTestFixture.number(object, "bptt") == 35)
        let (_, vocabulary) = try RNNLanguageModel.load(from: modelURL)
        let tokens = try Corpus(text: String(contentsOfFile: test, encoding: .utf8), vocabulary: vocabulary).count
        #expect(ToolTestFixture.number(object, "tokens") == Double(tokens - 1))
        #expect(object["non_finite"] == nil)

        // Rate 0: the dynamic perplexity is the static one exactly.
        let still = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test, "--dynamic",
                                                  "--dynamic-lr", "0", "--batch", "3", "--bptt", "7", "--json"], in: scratch.url)
        try #require(still.exited && still.status == 0, "\(still)")
        let zero = try #require(ToolTestFixture.jsonObject(still))
        #expect(ToolTestFixture.number(zero, "dynamic_perplexity") == ToolTestFixture.number(zero, "perplexity"))
        #expect(ToolTestFixture.number(zero, "dynamic_lr") == 0)
        #expect(try Data(contentsOf: modelURL) == before)

        let text = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test, "--dynamic",
                                                 "--dynamic-clip", "0"], in: scratch.url)
        #expect(text.exited && text.status == 0, "\(text)")
        #expect(text.stdout.contains("static perplexity ") && text.stdout.contains("dynamic perplexity "), "\(text)")
        #expect(text.stdout.contains("clip none"), "\(text)")
    }

    @Test("on a text the model cannot predict, adapting lowers the perplexity")
    func dynamicHelps() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        // Every parameter zero: uniform predictions, and SGD can only learn the output bias, which on one repeated
        // word raises that word's probability at every step (see DynamicEvaluationTests.adaptingHelps).
        let tokens = ["a", "b", "c", "d", "<eos>"]
        let configuration = RNNLanguageModel.Configuration(vocabularySize: tokens.count, embeddingSize: 4, hiddenSize: 4)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in configuration.parameterShapes { tensors[name] = Tensor(zeros: shape) }
        try RNNLanguageModel(configuration: configuration, tensors: tensors)
            .save(to: scratch.url.appendingPathComponent("zero.safetensors"),
                  vocabulary: Vocabulary(tokens: tokens, level: .word))
        let data = try scratch.write(String(repeating: "c c c c c c c c c c\n", count: 10), to: "c.txt")
        let result = try ToolTestRunner.run(tool, ["eval", "--model", "zero.safetensors", "--data", data, "--dynamic",
                                                   "--bptt", "10", "--json"], in: scratch.url)
        try #require(result.exited && result.status == 0, "\(result)")
        let object = try #require(ToolTestFixture.jsonObject(result))
        let staticPerplexity = try #require(ToolTestFixture.number(object, "perplexity"))
        let dynamicPerplexity = try #require(ToolTestFixture.number(object, "dynamic_perplexity"))
        // Uniform over 5 tokens, up to the float rounding of the softmax.
        #expect(abs(staticPerplexity - 5) <= 1e-5)
        #expect(dynamicPerplexity < staticPerplexity, "dynamic \(dynamicPerplexity), static \(staticPerplexity)")
    }

    @Test("bad dynamic-evaluation flags fail with a readable message", arguments: [
        (["--dynamic", "--dynamic-lr", "-1"], "--dynamic-lr"),
        (["--dynamic", "--dynamic-lr", "nan"], "--dynamic-lr"),
        (["--dynamic", "--dynamic-lr", "inf"], "--dynamic-lr"),
        (["--dynamic", "--dynamic-clip", "-0.5"], "--dynamic-clip"),
        (["--dynamic-lr", "0.1"], "need --dynamic"),
    ])
    func badFlags(flags: [String], expected: String) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let model = try ToolTestFixture.writeCheckpoint(tokens: ["a", "b", "<eos>"], to: "m.safetensors", in: scratch)
        let data = try scratch.write("a b a b\n", to: "t.txt")
        let result = try ToolTestRunner.run(tool, ["eval", "--model", model, "--data", data] + flags, in: scratch.url)
        #expect(result.exited && result.status != 0, "\(result)")
        #expect(result.stderr.contains(expected), "\(result)")
    }
}
