// `rnncore generate` options (stop strings, --prompt -, --interactive, the unknown-word message) and `rnncore info`
// on a model, a training checkpoint and a file that is neither.

import Foundation
import RNNCore
import Testing

@Suite("Tool: generate options and info", .serialized)
struct GenerationToolTests {
    /// A tiny model trained by the tool on the fixture's words, with a training checkpoint (m.resume.safetensors).
    static func trained(_ tool: URL, in scratch: ToolTestScratchDirectory) throws {
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let result = try ToolTestRunner.run(
            tool, ["train", "--train", train] + ToolTests.tinyModel + ["--out", "m.safetensors", "--checkpoint-every", "40"],
            in: scratch.url)
        try #require(result.exited && result.status == 0, "\(result)")
        try #require(FileManager.default.fileExists(atPath: scratch.path("m.resume.safetensors")))
    }

    @Test("Unknown prompt words are all named, with words the vocabulary has")
    func unknownWords() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        try ToolTestFixture.writeCheckpoint(tokens: ["<eos>", "dog", "runs", "fast"], to: "u.safetensors", in: scratch)
        let result = try ToolTestRunner.run(
            tool, ["generate", "--model", "u.safetensors", "--prompt", "the dog zebra the cat"], in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        #expect(result.stderr.contains("unknown words in the prompt: the, zebra, cat; the vocabulary has 4 tokens, for example: dog, runs, fast"),
                "\(result)")
        let known = try ToolTestRunner.run(
            tool, ["generate", "--model", "u.safetensors", "--prompt", "dog runs", "--count", "3"], in: scratch.url)
        #expect(known.exited && known.status == 0 && known.stdout.hasPrefix("dog runs"), "\(known)")
    }

    @Test("Generation stops at a stop string; --prompt - reads the prompt from standard input; bad values refused")
    func stopAndStdinPrompt() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        try Self.trained(tool, in: scratch)
        let greedy = ["generate", "--model", "m.safetensors", "--temperature", "0", "--count", "30"]
        let full = try ToolTestRunner.run(tool, greedy, in: scratch.url)
        try #require(full.exited && full.status == 0, "\(full)")
        // Stop at " WORD", a word of the greedy text after a space: the output is the text up to the first place
        // where the text so far ends with it (a token boundary follows), then a line end.
        func firstEnd(of stop: String, in text: String) -> String.Index? {
            var from = text.startIndex
            while let found = text.range(of: stop, range: from..<text.endIndex) {
                if found.upperBound == text.endIndex || text[found.upperBound].isWhitespace { return found.upperBound }
                from = text.index(after: found.lowerBound)
            }
            return nil
        }
        let words = full.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        let stop = try #require(words.dropFirst().map { " " + $0 }.first { firstEnd(of: $0, in: full.stdout) != nil },
                                "\(full)")
        let end = try #require(firstEnd(of: stop, in: full.stdout))
        let stopped = try ToolTestRunner.run(tool, greedy + ["--stop", "nothing-like-it", "--stop", stop], in: scratch.url)
        #expect(stopped.exited && stopped.status == 0, "\(stopped)")
        #expect(stopped.stdout == String(full.stdout[..<end]) + "\n", "\(stopped)\nfull:\n\(full)")

        // --prompt - equals the same prompt given on the command line.
        let inline = try ToolTestRunner.run(tool, greedy + ["--prompt", "the cat sees"], in: scratch.url)
        let piped = try RunningTool(tool, greedy + ["--prompt", "-"], in: scratch.url, pipedInput: true)
        try piped.send("the cat sees\n")
        let fromStdin = try piped.finish()
        #expect(inline.exited && inline.status == 0 && inline.stdout.hasPrefix("the cat sees "), "\(inline)")
        #expect(fromStdin.exited && fromStdin.status == 0 && fromStdin.stdout == inline.stdout, "\(fromStdin)\n\(inline)")

        for (option, value, message) in [("--top-p", "0", "--top-p must lie in (0, 1]"), ("--top-p", "1.5", "--top-p"),
                                          ("--repetition-penalty", "0.5", "--repetition-penalty must be a finite number ≥ 1"),
                                          ("--repetition-penalty", "nan", "--repetition-penalty"),
                                          ("--repetition-window", "-1", "--repetition-window"), ("--stop", "", "--stop must not be empty")] {
            let refused = try ToolTestRunner.run(tool, greedy + [option, value], in: scratch.url)
            #expect(refused.exited && refused.status == 64 && refused.stderr.contains(message), "\(option) \(value): \(refused)")
        }
    }

    @Test("--interactive continues each line as it comes, keeping the hidden state between lines")
    func interactive() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        try Self.trained(tool, in: scratch)
        // --stop at the line end: each turn prints exactly one line, whatever the model draws.
        let options = ["--count", "6", "--temperature", "0.8", "--top-p", "0.9", "--repetition-penalty", "1.2", "--seed", "5",
                       "--stop", "\n"]
        let running = try RunningTool(tool, ["generate", "--model", "m.safetensors", "--interactive"] + options, in: scratch.url,
                                      pipedInput: true)
        try running.send("the cat\n")
        // The first continuation is out (streamed and flushed) while the tool still waits for the next line.
        #expect(running.waitForStdout(lines: 1), "stdout so far: \(running.stdoutSoFar)")
        #expect(running.process.isRunning)
        try running.send("a bird zebra\n")  // an unknown word: reported, the line skipped (an empty output line)
        try running.send("a bird\n")
        let result = try running.finish()
        #expect(result.exited && result.status == 0, "\(result)")
        #expect(result.stderr.contains("unknown words in the prompt: zebra"), "\(result)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 4 && lines[1].isEmpty && lines[3].isEmpty, "\(result)")

        // The same turns through the library's session: one state from the first line to the last.
        let (model, vocabulary) = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("m.safetensors"))
        var session = try GenerationSession(model: model, options: SamplingOptions(
            temperature: 0.8, topP: 0.9, repetitionPenalty: 1.2, seed: 5))
        var expected: [String] = []
        for line in ["the cat", "a bird"] {
            try session.feed(Array(try vocabulary.encode(line).dropLast()))  // the line's <eos> dropped
            var decoder = IncrementalDecoder(vocabulary: vocabulary)
            var text = ""
            for _ in 0..<6 {
                text += decoder.text(for: try session.next())
                if text.hasSuffix("\n") { break }
            }
            expected.append(text.hasSuffix("\n") ? String(text.dropLast()) : text)
        }
        #expect(lines.count == 4 && [lines[0], lines[2]] == expected, "\(result)\nlibrary: \(expected)")
    }

    @Test("info describes a model and a training checkpoint, as text and JSON, and refuses other files")
    func info() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        try Self.trained(tool, in: scratch)
        let (model, vocabulary) = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("m.safetensors"))
        let parameters = model.parameters.scalarCount

        let text = try ToolTestRunner.run(tool, ["info", "--model", "m.safetensors"], in: scratch.url)
        #expect(text.exited && text.status == 0, "\(text)")
        for fragment in ["format rnncore-lm, version 1", "cell: tanh RNN (rnn), 1 layer", "embedding 8, hidden 8",
                         "parameters: \(parameters)", "vocabulary: \(vocabulary.count) tokens, word level",
                         "the first 10 tokens in vocabulary order (no counts are stored): "
                             + vocabulary.tokens.prefix(10).joined(separator: ", ")] {
            #expect(text.stdout.contains(fragment), "\(fragment): \(text)")
        }
        let json = try ToolTestRunner.run(tool, ["info", "--model", "m.safetensors", "--json"], in: scratch.url)
        let object = try #require(ToolTestFixture.jsonObject(json))
        #expect(object["format"] as? String == "rnncore-lm" && object["cell_name"] as? String == "tanh RNN")
        #expect(ToolTestFixture.number(object, "parameters") == Double(parameters))
        #expect(ToolTestFixture.number(object, "vocabulary_size") == Double(vocabulary.count))
        #expect(object["first_tokens"] as? [String] == Array(vocabulary.tokens.prefix(10)))
        #expect(object["settings"] == nil && object["epoch"] == nil)

        let saved = try TrainingCheckpoint.load(from: scratch.url.appendingPathComponent("m.resume.safetensors"))
        let checkpoint = try ToolTestRunner.run(tool, ["info", "--model", "m.resume.safetensors"], in: scratch.url)
        #expect(checkpoint.exited && checkpoint.status == 0, "\(checkpoint)")
        #expect(checkpoint.stdout.contains("RNNCore training checkpoint (format rnncore-train, version 2)"), "\(checkpoint)")
        #expect(checkpoint.stdout.contains("settings: {"), "\(checkpoint)")
        let checkpointJSON = try ToolTestRunner.run(tool, ["info", "--model", "m.resume.safetensors", "--json"], in: scratch.url)
        let record = try #require(ToolTestFixture.jsonObject(checkpointJSON))
        #expect(record["format"] as? String == "rnncore-train")
        #expect(ToolTestFixture.number(record, "epoch") == Double(saved.epoch))
        #expect(ToolTestFixture.number(record, "batch") == Double(saved.batch))
        let settings = try #require(record["settings"] as? [String: Any])
        let decoded = try JSONDecoder().decode(TrainingSettings.self, from: JSONSerialization.data(withJSONObject: settings))
        #expect(decoded == saved.settings)

        let other = try scratch.write("not a model at all, just some text\n", to: "notes.txt")
        let refused = try ToolTestRunner.run(tool, ["info", "--model", other], in: scratch.url)
        #expect(refused.exited && refused.status == 64 && refused.stderr.contains(other), "\(refused)")
        #expect(!refused.stderr.contains("Error Domain="), "\(refused)")
    }
}
