// `rnncore train` fills the library's settings record: without options it is exactly `TrainingSettings()`
// resolved, every option lands in its field, --json reports the record, --resume takes it from the checkpoint,
// and a version-1 training checkpoint is refused with a message saying why.

import Foundation
import RNNCore
import Testing

@Suite("Tool: rnncore train fills the settings record")
struct TrainSettingsToolTests {
    /// The settings `rnncore train ARGUMENTS --print-settings` prints.
    static func printedSettings(_ tool: URL, _ arguments: [String], in scratch: ToolTestScratchDirectory,
                                sourceLocation: SourceLocation = #_sourceLocation) throws -> TrainingSettings {
        let result = try ToolTestRunner.run(tool, ["train"] + arguments + ["--print-settings"], in: scratch.url)
        try #require(result.exited && result.status == 0, "\(result)", sourceLocation: sourceLocation)
        let line = try #require(result.lastStdoutLine, sourceLocation: sourceLocation)
        return try JSONDecoder().decode(TrainingSettings.self, from: Data(line.utf8))
    }

    @Test("Without options the run's settings are exactly TrainingSettings() resolved: the record is the one source of defaults")
    func defaultsComeFromTheRecord() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        #expect(try Self.printedSettings(tool, [], in: scratch) == TrainingSettings().resolved(builtInCorpus: true))
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        #expect(try Self.printedSettings(tool, ["--train", train], in: scratch)
                == TrainingSettings().resolved(builtInCorpus: false))
    }

    @Test("Every option lands in its field of the record")
    func optionsFillTheRecord() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let settings = try Self.printedSettings(tool, [
            "--level", "char", "--embed", "7", "--input", "one-hot", "--hidden", "9", "--cell", "lstm", "--layers", "2",
            "--dropout", "0.25", "--bptt-truncation", "3", "--batch", "5", "--bptt", "6", "--epochs", "2",
            "--optimizer", "sgd", "--lr-decay", "1.5", "--lr-decay-start", "3", "--clip", "0", "--seed", "18446744073709551615",
            "--accuracy", "--skip-nonfinite",
        ], in: scratch)
        var expected = TrainingSettings()
        expected.level = .character
        expected.model = ModelSettings(cell: .lstm, layers: 2, embeddingSize: 7, hiddenSize: 9, dropout: 0.25, input: .oneHot)
        (expected.training.truncation, expected.training.batchSize, expected.training.bptt, expected.training.epochs) = (3, 5, 6, 2)
        (expected.training.learningRateDecay, expected.training.learningRateDecayStart) = (1.5, 3)
        expected.training.clipNorm = nil  // --clip 0: no clipping
        (expected.training.measureAccuracy, expected.training.skipNonFinite) = (true, true)
        expected.optimizer.kind = .sgd
        expected.optimizer.learningRate = 1  // sgd's default
        expected.seed = .max
        #expect(settings == expected)
        #expect(try Self.printedSettings(tool, ["--lr", "0.5"], in: scratch).optimizer.learningRate == 0.5)
    }

    @Test("--json reports the settings record, which the training checkpoint stores and --resume reuses")
    func jsonReportsTheSettingsAndResumeReusesThem() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let run = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--embed", "8", "--hidden", "16", "--batch", "4", "--bptt", "5",
                   "--bptt-truncation", "2", "--epochs", "2", "--checkpoint-every", "100", "--out", "m.safetensors", "--json"],
            in: scratch.url)
        try #require(run.exited && run.status == 0, "\(run)")
        let metrics = try #require(ToolTestFixture.jsonObject(run))
        let reported = try JSONDecoder().decode(
            TrainingSettings.self, from: JSONSerialization.data(withJSONObject: try #require(metrics["settings"])))
        #expect(reported.model.hiddenSize == 16 && reported.training.truncation == 2 && reported.training.epochs == 2)
        let checkpointURL = scratch.url.appendingPathComponent("m.resume.safetensors")
        let checkpoint = try TrainingCheckpoint.load(from: checkpointURL)
        #expect(checkpoint.settings == reported)
        // The record is stored once; no command line is.
        let metadata = try SafeTensorsFile.read(from: checkpointURL).metadata
        #expect(metadata["rnncore_train_command"] == nil && metadata["settings"] != nil)
        let resumedSettings = try Self.printedSettings(tool, ["--resume", "m.resume.safetensors"], in: scratch)
        #expect(resumedSettings == reported)
    }

    @Test("A version-1 training checkpoint is refused: written by an older RNNCore, it cannot be resumed")
    func versionOneIsRefused() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let saved = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--embed", "4", "--hidden", "4", "--batch", "4", "--bptt", "5",
                   "--epochs", "1", "--checkpoint-every", "50", "--checkpoint", "r.safetensors"], in: scratch.url)
        try #require(saved.exited && saved.status == 0, "\(saved)")
        let url = scratch.url.appendingPathComponent("r.safetensors")
        var file = try SafeTensorsFile.read(from: url)
        file.metadata["format_version"] = "1"
        file.metadata["rnncore_train_command"] = #"{"arguments":["--train","train.txt"],"paths":{}}"#
        try file.write(to: url)
        let result = try ToolTestRunner.run(tool, ["train", "--resume", "r.safetensors"], in: scratch.url)
        #expect(result.exited && (result.status == 1 || result.status == 64), "\(result)")
        for words in ["format version 1", "written by an older RNNCore", "cannot be resumed"] {
            #expect(result.stderr.contains(words), "stderr should say \(words): \(result.stderr)")
        }
        #expect(!result.stderr.contains("Fatal error"), "\(result)")
    }
}
