// End-to-end tests of the `rnncore` executable: train → eval → generate on generated text, character level, and
// bad input, which must end with a non-zero exit status and a readable message, never a crash.

import Foundation
import RNNCore
import Testing

@Suite("Tool: rnncore end to end")
struct ToolTests {
    static let tinyModel = ["--epochs", "1", "--embed", "8", "--hidden", "8", "--batch", "4", "--bptt", "5"]

    @Test("train writes metrics, a plot and a model that eval and generate use")
    func trainEvaluateGenerate() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)

        // train
        let trained = try ToolTestRunner.run(tool, ["train", "--train", train, "--valid", valid, "--test", test]
            + Self.tinyModel + ["--json", "--out", "m.safetensors", "--plot", "p.svg"], in: scratch.url)
        try #require(trained.exited && trained.status == 0, "\(trained)")
        #expect(trained.stdout.split(separator: "\n").count == 1, "with --json, standard output holds only the JSON line")
        let metrics = try #require(ToolTestFixture.jsonObject(trained))
        for key in ["train_perplexity", "valid_perplexity", "test_perplexity", "tokens_per_second", "wall_seconds", "parameters"] {
            let value = ToolTestFixture.number(metrics, key)
            #expect(value.map { $0.isFinite && $0 > 0 } == true, "\(key) = \(String(describing: metrics[key]))")
        }
        #expect(ToolTestFixture.number(metrics, "epochs") == 1)
        // A barely trained model still beats uniform guessing among the 27 types on this very regular text
        // (observed 6.8 with OpenBLAS's Haswell and SkylakeX kernels alike: a margin of 4 on a convergence claim).
        let V = Double(ToolTestFixture.vocabulary.count)
        #expect(ToolTestFixture.number(metrics, "vocabulary_size") == V)
        #expect((ToolTestFixture.number(metrics, "test_perplexity") ?? .infinity) < V)
        #expect(trained.stderr.contains("test perplexity"))

        let svg = try String(contentsOf: scratch.url.appendingPathComponent("p.svg"), encoding: .utf8)
        #expect(svg.contains("<svg") && svg.contains("</svg>"))

        let (model, vocabulary) = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("m.safetensors"))
        #expect(Set(vocabulary.tokens) == ToolTestFixture.vocabulary)
        #expect(model.configuration == .init(vocabularySize: vocabulary.count, embeddingSize: 8, hiddenSize: 8, layers: 1))
        #expect(ToolTestFixture.number(metrics, "parameters") == Double(model.parameters.scalarCount))

        // eval: the same exact batch-1 evaluation as train's test perplexity
        let evaluated = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test, "--json"], in: scratch.url)
        try #require(evaluated.exited && evaluated.status == 0, "\(evaluated)")
        let evaluation = try #require(ToolTestFixture.jsonObject(evaluated))
        let perplexity = try #require(ToolTestFixture.number(evaluation, "perplexity"))
        let expected = try #require(ToolTestFixture.number(metrics, "test_perplexity"))
        #expect(abs(perplexity - expected) <= 1e-9 * expected, "eval \(perplexity), train \(expected)")
        let testTokens = try Corpus(text: String(contentsOfFile: test, encoding: .utf8), vocabulary: vocabulary).count
        #expect(ToolTestFixture.number(evaluation, "tokens") == Double(testTokens - 1))
        // And the library agrees on the loaded model.
        let library = try model.perplexity(on: Corpus(text: String(contentsOfFile: test, encoding: .utf8), vocabulary: vocabulary).ids)
        #expect(abs(library - expected) <= 1e-9 * expected)

        let plain = try ToolTestRunner.run(tool, ["eval", "--model", "m.safetensors", "--data", test], in: scratch.url)
        #expect(plain.exited && plain.status == 0 && plain.stdout.hasPrefix("perplexity "), "\(plain)")

        // generate: same seed, same text; another seed, another text
        let generate = ["generate", "--model", "m.safetensors", "--count", "20"]
        let first = try ToolTestRunner.run(tool, generate + ["--seed", "3"], in: scratch.url)
        let again = try ToolTestRunner.run(tool, generate + ["--seed", "3"], in: scratch.url)
        let other = try ToolTestRunner.run(tool, generate + ["--seed", "4"], in: scratch.url)
        for run in [first, again, other] { try #require(run.exited && run.status == 0, "\(run)") }
        #expect(!first.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(first.stdout == again.stdout)
        #expect(first.stdout != other.stdout, "20 sampled words should differ between seeds 3 and 4")
        let words = first.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        #expect(!words.isEmpty && words.count <= 20)  // <eos> becomes a line break, not a word
        #expect(Set(words).isSubset(of: ToolTestFixture.vocabulary), "generated words: \(words)")

        // Greedy decoding ignores the seed; a prompt is echoed and continued.
        let greedy = generate + ["--temperature", "0"]
        let greedyA = try ToolTestRunner.run(tool, greedy + ["--seed", "1"], in: scratch.url)
        let greedyB = try ToolTestRunner.run(tool, greedy + ["--seed", "2"], in: scratch.url)
        #expect(greedyA.exited && greedyA.status == 0 && greedyA.stdout == greedyB.stdout, "\(greedyA)\n\(greedyB)")
        let prompted = try ToolTestRunner.run(tool, generate + ["--prompt", "the old man", "--top-k", "3"], in: scratch.url)
        #expect(prompted.exited && prompted.status == 0 && prompted.stdout.hasPrefix("the old man "), "\(prompted)")
    }

    @Test("--level char trains, saves and samples a character model", arguments: [
        [String](), ["--cell", "lstm", "--layers", "2", "--input", "one-hot", "--dropout", "0.2", "--bptt-truncation", "3"],
        ["--cell", "gru", "--layers", "2", "--input", "one-hot", "--dropout", "0.2", "--bptt-truncation", "3"],
    ])
    func characterLevel(_ options: [String]) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let text = ToolTestFixture.words(sentences: 60, seed: 7)  // ~1 900 characters
        let train = try scratch.write(text, to: "chars.txt")
        let trained = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--level", "char"] + Self.tinyModel + options
                + ["--json", "--out", "c.safetensors"],
            in: scratch.url)
        try #require(trained.exited && trained.status == 0, "\(trained)")
        let metrics = try #require(ToolTestFixture.jsonObject(trained))
        let characters = Set(text)
        #expect(ToolTestFixture.number(metrics, "vocabulary_size") == Double(characters.count))
        #expect(ToolTestFixture.number(metrics, "train_perplexity").map { $0.isFinite && $0 > 1 } == true)

        let (model, vocabulary) = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("c.safetensors"))
        #expect(vocabulary.level == .character)
        if !options.isEmpty {
            let cell = try #require(CellKind(rawValue: options[1]))
            #expect(model.configuration == .init(vocabularySize: characters.count, hiddenSize: 8, layers: 2, cell: cell,
                                                 dropout: 0.2, input: .oneHot))
        }
        #expect(Set(vocabulary.tokens) == Set(characters.map(String.init)))

        let sampled = try ToolTestRunner.run(tool, ["generate", "--model", "c.safetensors", "--count", "40", "--seed", "1"],
                                             in: scratch.url)
        try #require(sampled.exited && sampled.status == 0, "\(sampled)")
        #expect(sampled.stdout.count == 41, "40 characters and print's newline: \(sampled.stdout.debugDescription)")
        #expect(Set(sampled.stdout).isSubset(of: characters))
    }

    @Test("A test word missing from the training vocabulary becomes <unk> when the training text has <unk>")
    func unknownWordsMapToUnk() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let train = try scratch.write(ToolTestFixture.words(sentences: 100, seed: 1) + "the <unk> sees the moon\n", to: "train.txt")
        let test = try scratch.write("the zebra sees the moon\n", to: "test.txt")
        let result = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--test", test] + Self.tinyModel + ["--json", "--out", "u.safetensors"],
            in: scratch.url)
        #expect(result.exited && result.status == 0, "\(result)")
        if let metrics = ToolTestFixture.jsonObject(result) {
            #expect(ToolTestFixture.number(metrics, "test_perplexity").map(\.isFinite) == true)
        }
        let evaluated = try ToolTestRunner.run(tool, ["eval", "--model", "u.safetensors", "--data", test], in: scratch.url)
        #expect(evaluated.exited && evaluated.status == 0, "\(evaluated)")
        // Generation never produces <unk>.
        let sampled = try ToolTestRunner.run(tool, ["generate", "--model", "u.safetensors", "--count", "200"], in: scratch.url)
        #expect(sampled.exited && sampled.status == 0 && !sampled.stdout.contains("<unk>"), "\(sampled)")
    }

    @Test("Bad input ends with a non-zero status and a readable message", arguments: ToolTestBadInput.allCases)
    func badInput(_ input: ToolTestBadInput) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let arguments = try input.prepare(in: scratch)
        let result = try ToolTestRunner.run(tool, arguments, in: scratch.url)
        #expect(!result.timedOut, "\(result)")
        #expect(result.reason == .exit, "the tool died of signal \(result.status):\n\(result)")
        #expect(result.status != 0, "\(result)")
        if let status = input.exitStatus { #expect(result.status == status, "\(result)") }
        #expect(result.stderr.hasPrefix("Error: ") || result.stderr.contains("\nError: "), "\(result)")
        for word in input.keywords {
            #expect(result.stderr.contains(word), "stderr should mention \(word.debugDescription):\n\(result.stderr)")
        }
        #expect(!result.stderr.contains("Fatal error"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out.safetensors")), "no model written on failure")
    }
}

/// One kind of bad input to the tool: the files it needs, the arguments, and what the message must say.
enum ToolTestBadInput: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case missingTrainFile, emptyTrainFile, nonUTF8TrainFile
    case unknownTestWord, tooFewTokens
    case evalModelIsText, evalModelMissing, evalVocabularyMismatch
    case zeroEpochs, zeroHidden, generateTopKZero
    case bidirectionalLanguageModel, dropoutOne, oneHotLargeVocabulary

    var testDescription: String { rawValue }

    /// Validation errors end with ArgumentParser's usage status (EX_USAGE); others with 1.
    var exitStatus: Int32? {
        switch self {
        case .zeroEpochs, .zeroHidden, .generateTopKZero, .bidirectionalLanguageModel, .dropoutOne: 64
        default: 1
        }
    }

    /// Words the message must contain.
    var keywords: [String] {
        switch self {
        case .missingTrainFile: ["No file", "absent.txt"]
        case .emptyTrainFile: ["empty.txt", "is empty"]
        case .nonUTF8TrainFile: ["binary.txt", "UTF-8"]
        case .unknownTestWord: ["\"zebra\"", "test.txt", "line 2"]
        case .tooFewTokens: ["too few"]
        case .evalModelIsText: ["header"]
        case .evalModelMissing: ["No checkpoint", "absent.safetensors"]
        case .evalVocabularyMismatch: ["\"zebra\"", "not in the vocabulary"]
        case .zeroEpochs: ["--epochs"]
        case .zeroHidden: ["--hidden", "at least 1"]
        case .generateTopKZero: ["--top-k"]
        case .bidirectionalLanguageModel: ["--bidirectional", "language models"]
        case .dropoutOne: ["--dropout", "[0, 1)"]
        case .oneHotLargeVocabulary: ["one-hot", "4096"]
        }
    }

    /// Writes the files of the case and returns the arguments.
    func prepare(in scratch: ToolTestScratchDirectory) throws -> [String] {
        let tiny = ToolTests.tinyModel + ["--out", "out.safetensors"]
        switch self {
        case .missingTrainFile:
            return ["train", "--train", scratch.path("absent.txt")] + tiny
        case .emptyTrainFile:
            return ["train", "--train", try scratch.write([], to: "empty.txt")] + tiny
        case .nonUTF8TrainFile:
            return ["train", "--train", try scratch.write([0xFF, 0xFE, 0x00, 0x61, 0x00, 0x0A, 0x00], to: "binary.txt")] + tiny
        case .unknownTestWord:
            let (train, valid, _) = try ToolTestFixture.writeWordSplits(in: scratch)
            let test = try scratch.write("the cat sees the moon\nthe zebra sees the moon\n", to: "test.txt")
            return ["train", "--train", train, "--valid", valid, "--test", test] + tiny
        case .tooFewTokens:
            let train = try scratch.write("the cat sees the moon\n", to: "tiny.txt")
            return ["train", "--train", train, "--batch", "50", "--bptt", "50", "--epochs", "1", "--out", "out.safetensors"]
        case .evalModelIsText:
            let text = try scratch.write(ToolTestFixture.words(sentences: 5, seed: 1), to: "model.txt")
            return ["eval", "--model", text, "--data", text]
        case .evalModelMissing:
            let data = try scratch.write(ToolTestFixture.words(sentences: 5, seed: 1), to: "data.txt")
            return ["eval", "--model", scratch.path("absent.safetensors"), "--data", data]
        case .evalVocabularyMismatch:
            let model = try ToolTestFixture.writeCheckpoint(tokens: ["the", "cat", "sees", "<eos>"], to: "m.safetensors", in: scratch)
            let data = try scratch.write("the cat sees the zebra\n", to: "data.txt")
            return ["eval", "--model", model, "--data", data]
        case .zeroEpochs, .zeroHidden:
            let train = try scratch.write(ToolTestFixture.words(sentences: 50, seed: 1), to: "train.txt")
            let (option, value) = self == .zeroEpochs ? ("--epochs", "0") : ("--hidden", "0")
            return ["train", "--train", train, "--out", "out.safetensors", option, value]
        case .generateTopKZero:
            let model = try ToolTestFixture.writeCheckpoint(tokens: ["the", "cat", "<eos>"], to: "m.safetensors", in: scratch)
            return ["generate", "--model", model, "--top-k", "0"]
        case .bidirectionalLanguageModel, .dropoutOne:
            let train = try scratch.write(ToolTestFixture.words(sentences: 50, seed: 1), to: "train.txt")
            let option = self == .dropoutOne ? ["--dropout", "1"] : ["--bidirectional"]
            return ["train", "--train", train, "--out", "out.safetensors", "--cell", "lstm"] + option
        case .oneHotLargeVocabulary:
            // 5000 distinct words: too many for one-hot inputs.
            let words = (0..<5000).map { "w\($0)" }.joined(separator: " ") + "\n"
            let train = try scratch.write(String(repeating: words, count: 2), to: "train.txt")
            return ["train", "--train", train, "--input", "one-hot"] + tiny
        }
    }
}
