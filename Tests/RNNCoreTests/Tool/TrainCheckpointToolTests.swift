// `rnncore train` training checkpoints end to end: --checkpoint-every and --resume reproduce an uninterrupted run
// byte for byte, Ctrl-C saves and exits with status 130, a diverged run keeps its last good checkpoint, and bad
// resume requests end with a readable error.

import Foundation
import RNNCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Tool: training checkpoints, Ctrl-C and --resume")
struct TrainCheckpointToolTests {
    static let model = ["--embed", "8", "--hidden", "16", "--batch", "4", "--bptt", "5"]

    @Test("--checkpoint-every then --resume (from another directory) ends with the uninterrupted run's model, bit for bit")
    func checkpointEveryAndResumeReproduceTheRun() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let run = ["train", "--train", train, "--valid", valid, "--test", test] + Self.model + ["--epochs", "3", "--json"]

        let plain = try ToolTestRunner.run(tool, run + ["--out", "a.safetensors"], in: scratch.url)
        try #require(plain.exited && plain.status == 0, "\(plain)")
        let saving = try ToolTestRunner.run(tool, run + ["--out", "b.safetensors", "--checkpoint-every", "40"], in: scratch.url)
        try #require(saving.exited && saving.status == 0, "\(saving)")
        // Saving checkpoints does not change the run.
        let a = try Data(contentsOf: scratch.url.appendingPathComponent("a.safetensors"))
        #expect(try Data(contentsOf: scratch.url.appendingPathComponent("b.safetensors")) == a)

        // The last checkpoint (next to --out) is from the third epoch, at a multiple of 40 batches or an epoch end.
        let resumeFile = scratch.url.appendingPathComponent("b.resume.safetensors")
        let checkpoint = try TrainingCheckpoint.load(from: resumeFile)
        #expect(checkpoint.epoch == 3 && (checkpoint.step % 40 == 0 || checkpoint.batch == 0), "epoch \(checkpoint.epoch) step \(checkpoint.step)")
        #expect(checkpoint.reports.count == 2 && checkpoint.settings.training.epochs == 3)
        #expect(checkpoint.configuration.hiddenSize == 16 && checkpoint.configuration.embeddingSize == 8)

        // Resume it from another directory: the stored paths are absolute.
        let elsewhere = scratch.url.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let resumed = try ToolTestRunner.run(
            tool, ["train", "--resume", resumeFile.path, "--out", "c.safetensors", "--json"], in: elsewhere)
        try #require(resumed.exited && resumed.status == 0, "\(resumed)")
        #expect(resumed.stderr.contains("resumed from"), "\(resumed)")
        #expect(try Data(contentsOf: elsewhere.appendingPathComponent("c.safetensors")) == a,
                "the resumed run must end with the uninterrupted run's weights")
        let (x, y) = (try #require(ToolTestFixture.jsonObject(plain)), try #require(ToolTestFixture.jsonObject(resumed)))
        for key in ["train_perplexity", "valid_perplexity", "test_perplexity", "epochs", "parameters"] {
            #expect(ToolTestFixture.number(x, key) == ToolTestFixture.number(y, key), "\(key): \(x[key] ?? "-") vs \(y[key] ?? "-")")
        }
    }

    @Test("Ctrl-C saves a training checkpoint, exits with 130, and --resume finishes the run as if never stopped")
    func interruptSavesAndResumeFinishes() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        // Long enough (many epochs of a wider model) that the signal arrives long before the end.
        let epochs = 30
        let run = ["train", "--train", train, "--valid", valid, "--embed", "8", "--hidden", "64", "--batch", "4",
                   "--bptt", "5", "--epochs", String(epochs)]

        let interrupted = try Self.runAndInterrupt(tool, run + ["--out", "s.safetensors"], in: scratch)
        try #require(interrupted.reason == .exit && interrupted.status == 130, "\(interrupted)")
        let checkpointPath = scratch.path("s.resume.safetensors")
        #expect(interrupted.stdout.contains("resume with: rnncore train --resume s.resume.safetensors"), "\(interrupted)")
        #expect(interrupted.stderr.contains("interrupted: stopping after this batch"), "\(interrupted)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("s.safetensors")), "no final model after Ctrl-C")
        let checkpoint = try TrainingCheckpoint.load(from: URL(fileURLWithPath: checkpointPath))
        #expect(checkpoint.epoch <= epochs && checkpoint.step > 0)
        _ = try RNNLanguageModel.load(from: URL(fileURLWithPath: checkpointPath))  // also a loadable model
        let names = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
        #expect(names.allSatisfy { !$0.contains(".tmp-") }, "a temporary file was left behind: \(names)")

        let resumed = try ToolTestRunner.run(tool, ["train", "--resume", "s.resume.safetensors", "--json"],
                                             in: scratch.url, timeout: 300)
        try #require(resumed.exited && resumed.status == 0, "\(resumed)")
        #expect(ToolTestFixture.jsonObject(resumed).flatMap { ToolTestFixture.number($0, "epochs") } == Double(epochs))

        let uninterrupted = try ToolTestRunner.run(tool, run + ["--out", "u.safetensors"], in: scratch.url, timeout: 300)
        try #require(uninterrupted.exited && uninterrupted.status == 0, "\(uninterrupted)")
        #expect(try Data(contentsOf: scratch.url.appendingPathComponent("u.safetensors"))
                == Data(contentsOf: scratch.url.appendingPathComponent("s.safetensors")),
                "interrupted at epoch \(checkpoint.epoch), step \(checkpoint.step), and resumed: other weights than the uninterrupted run")
    }

    @Test("A diverging run stops with an error naming the step and keeps its last good training checkpoint")
    func divergenceKeepsTheLastGoodCheckpoint() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        // The divergence is forced (the loss of step 4 on is NaN), not hoped for from a huge learning rate, whose
        // overflow depends on the CPU and the BLAS kernels. A checkpoint is saved after every batch.
        let result = try ToolTestRunner.run(
            tool, ["train", "--train", train] + Self.model
                + ["--inject-nonfinite-loss-from-step", "4", "--checkpoint-every", "1", "--out", "d.safetensors"],
            in: scratch.url)
        #expect(result.exited && result.status == 1, "\(result)")
        #expect(result.stderr.contains("non-finite loss at epoch 1, batch 4 (step 4)"), "\(result)")
        #expect(result.stderr.contains("The last training checkpoint, d.resume.safetensors (epoch 1, after batch 3), was kept"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("d.safetensors")), "no final model for a diverged run")
        // The kept checkpoint holds finite weights (the loader refuses any NaN) from before the failing batch.
        let checkpoint = try TrainingCheckpoint.load(from: scratch.url.appendingPathComponent("d.resume.safetensors"))
        #expect(checkpoint.epoch == 1 && checkpoint.batch == 3 && checkpoint.step == 3)
    }

    @Test("--skip-nonfinite goes on past non-finite losses, and --json stays valid JSON when every loss of an epoch is NaN")
    func skippedNonFiniteUpdatesGiveValidJSON() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        // From step 1 on every loss is NaN: every update is skipped, so the training perplexity is NaN.
        let skipping = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--valid", valid, "--test", test] + Self.model
                + ["--epochs", "1", "--inject-nonfinite-loss-from-step", "1", "--skip-nonfinite", "--json"],
            in: scratch.url)
        #expect(skipping.exited && skipping.status == 0, "\(skipping)")
        let lines = skipping.stdout.split(separator: "\n")
        #expect(lines.count == 1, "standard output holds only the JSON object: \(skipping)")
        guard let metrics = ToolTestFixture.jsonObject(skipping) else { return }
        #expect(metrics["train_perplexity"] is NSNull, "\(metrics)")
        #expect((metrics["non_finite"] as? [String: String])?["train_perplexity"] == "nan", "\(metrics)")
        // A NaN training perplexity means that no update was applied: every batch was skipped.
        #expect((ToolTestFixture.number(metrics, "skipped_updates") ?? 0) >= 10, "\(metrics)")
        // The weights were never updated, so the untrained model's perplexities are finite numbers.
        #expect(ToolTestFixture.number(metrics, "test_perplexity")?.isFinite == true, "\(metrics)")
    }

    enum BadResume: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case missingFile, trainedModel, otherTrainingText, modelOptionGiven, checkpointIsOut

        var testDescription: String { rawValue }

        var keywords: [String] {
            switch self {
            case .missingFile: ["No checkpoint", "absent.safetensors"]
            case .trainedModel: ["not an RNNCore training checkpoint", "trained model"]
            case .otherTrainingText: ["training text is not the one this run was trained on"]
            case .modelOptionGiven: ["--hidden cannot be given with --resume"]
            case .checkpointIsOut: ["--out (x.safetensors) and --checkpoint (./x.safetensors) are the same file"]
            }
        }
    }

    @Test("Bad resume requests end with status 1 or 64 and a readable message", arguments: BadResume.allCases)
    func badResume(_ bad: BadResume) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        func makeCheckpoint() throws {
            let saved = try ToolTestRunner.run(
                tool, ["train", "--train", train] + Self.model + ["--epochs", "1", "--checkpoint-every", "50", "--checkpoint", "r.safetensors"],
                in: scratch.url)
            try #require(saved.exited && saved.status == 0, "\(saved)")
        }
        let arguments: [String]
        switch bad {
        case .missingFile:
            arguments = ["train", "--resume", "absent.safetensors"]
        case .trainedModel:
            try ToolTestFixture.writeCheckpoint(tokens: ["the", "cat", "<eos>"], to: "m.safetensors", in: scratch)
            arguments = ["train", "--resume", "m.safetensors"]
        case .otherTrainingText:
            try makeCheckpoint()
            arguments = ["train", "--resume", "r.safetensors", "--train", valid]
        case .modelOptionGiven:
            try makeCheckpoint()
            arguments = ["train", "--resume", "r.safetensors", "--hidden", "32"]
        case .checkpointIsOut:
            arguments = ["train", "--train", train, "--out", "x.safetensors", "--checkpoint", "./x.safetensors"]
        }
        let result = try ToolTestRunner.run(tool, arguments, in: scratch.url)
        #expect(result.exited && (result.status == 1 || result.status == 64), "\(result)")
        #expect(result.stderr.contains("Error: "), "\(result)")
        for word in bad.keywords { #expect(result.stderr.contains(word), "stderr should mention \(word):\n\(result.stderr)") }
        #expect(!result.stderr.contains("Fatal error"), "\(result)")
    }

    /// Starts `rnncore arguments…`, sends SIGINT once it has reported training progress, and waits for it to exit.
    /// Retries (at most 3 times) when the run finished before the signal could be sent.
    static func runAndInterrupt(_ tool: URL, _ arguments: [String], in scratch: ToolTestScratchDirectory) throws -> ToolTestResult {
        for _ in 0..<3 {
            let run = try ToolTestRunner.start(tool, arguments, in: scratch.url)
            // Progress lines go to standard error unbuffered: the first one comes after 20 batches.
            let deadline = Date().addingTimeInterval(120)
            var signalled = false
            while run.process.isRunning && Date() < deadline {
                if run.stderrSoFar.contains("epoch 1/") {
                    kill(run.process.processIdentifier, SIGINT)
                    signalled = true
                    break
                }
                usleep(2_000)
            }
            let result = try run.finish(timeout: 120)
            if signalled && !(result.reason == .exit && result.status == 0) { return result }
        }
        Issue.record("the run always finished before it could be interrupted")
        throw CancellationError()
    }
}
