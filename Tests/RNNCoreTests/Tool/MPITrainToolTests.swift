// `mpirun -np K rnncore train` (through scripts/mpirun.sh; K = 2 and 4): the same run as one process, resume with
// the same rank count only, one clear error for a batch the ranks cannot share, and a killed rank ending the job
// with the last training checkpoint intact. Skipped where Open MPI is not installed (CI installs it).
//
// Tolerance, K ranks against one process: the test perplexity after a few dozen clipped Adam steps of a small
// model; the ranks average K partial-batch gradients where one process takes one mean, and their GEMMs run over
// fewer rows, so every step differs by float32 roundings (~1e-7 relative): 1e-5 relative holds with a wide margin
// (observed 2e-9 for K = 2, 5e-9 for K = 4), while reading the wrong streams or a missing 1/K changes the
// perplexity by percents.

import Foundation
import RNNCore
import Testing

@Suite("Tool: rnncore train under mpirun", .enabled(if: MPITestRunner.mpirunURL != nil, MPITestRunner.skipReason),
       .serialized)
struct MPITrainToolTests {
    static let model = ["--embed", "8", "--hidden", "8", "--bptt", "5", "--cell", "lstm", "--layers", "2",
                        "--dropout", "0.2", "--seed", "3"]

    /// `scripts/mpirun.sh -np ranks rnncore args…` in `directory`.
    static func mpirun(_ ranks: Int, _ tool: URL, _ arguments: [String], in directory: URL,
                       timeout: TimeInterval = 120) throws -> ToolTestResult {
        try ToolTestRunner.run(URL(fileURLWithPath: "/bin/bash"),
                               [MPITestRunner.wrapper.path, "-np", String(ranks), tool.path] + arguments,
                               in: directory, timeout: timeout)
    }

    @Test("K ranks reach the test perplexity of one process; --json reports the ranks; rank 0 alone writes",
          arguments: [2, 4])
    func ranksMatchOneProcess(_ K: Int) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let arguments = ["train", "--train", train, "--valid", valid, "--test", test, "--epochs", "2", "--batch", "4",
                         "--json"] + Self.model
        let single = try ToolTestRunner.run(tool, arguments + ["--out", "one.safetensors"], in: scratch.url)
        try #require(single.exited && single.status == 0, "\(single)")
        let pair = try Self.mpirun(K, tool, arguments + ["--out", "two.safetensors"], in: scratch.url)
        try #require(pair.exited && pair.status == 0, "\(pair)")
        let one = try #require(ToolTestFixture.jsonObject(single)), two = try #require(ToolTestFixture.jsonObject(pair))
        #expect(ToolTestFixture.number(one, "ranks") == 1 && ToolTestFixture.number(two, "ranks") == Double(K))
        let (a, b) = (try #require(ToolTestFixture.number(one, "test_perplexity")),
                      try #require(ToolTestFixture.number(two, "test_perplexity")))
        expectApproximatelyEqual(b, a, tolerance: NumericsTolerance(absolute: 0, relative: 1e-5), "\(K) ranks vs 1")
        // One JSON line and one set of progress lines: the other rank is silent.
        #expect(pair.stdout.split(separator: "\n").count == 1, "\(pair.stdout)")
        #expect(pair.stderr.components(separatedBy: "test perplexity:").count == 2, "\(pair.stderr)")
        _ = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("two.safetensors"))
    }

    @Test("A resumed run needs the same number of ranks; with them it ends bit for bit as the run that never stopped")
    func resumeNeedsTheSameRanks() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        // Stopped by the injected divergence after its checkpoint at step 10: a real mid-run checkpoint.
        let run = ["train", "--train", train, "--valid", valid, "--epochs", "3", "--batch", "4"] + Self.model
        let whole = try Self.mpirun(2, tool, run + ["--json"], in: scratch.url)
        try #require(whole.exited && whole.status == 0, "\(whole)")
        let stopped = try Self.mpirun(2, tool, run + ["--checkpoint", "ck.safetensors", "--checkpoint-every", "10",
                                                      "--inject-nonfinite-loss-from-step", "12"],
                                      in: scratch.url)
        #expect(stopped.exited && stopped.status != 0, "\(stopped)")
        #expect(stopped.stderr.contains("non-finite loss"), "\(stopped)")
        let checkpoint = try TrainingCheckpoint.load(from: scratch.url.appendingPathComponent("ck.safetensors"))
        #expect(checkpoint.step == 10)

        let alone = try ToolTestRunner.run(tool, ["train", "--resume", "ck.safetensors"], in: scratch.url)
        #expect(alone.exited && alone.status != 0, "\(alone)")
        #expect(alone.stderr.contains("was saved by a run on 2 ranks, this one has 1: resume it with mpirun -np 2"),
                "\(alone)")
        let resumed = try Self.mpirun(2, tool, ["train", "--resume", "ck.safetensors", "--json"], in: scratch.url)
        #expect(resumed.exited && resumed.status == 0, "\(resumed)")
        let (a, b) = (try #require(ToolTestFixture.jsonObject(whole)), try #require(ToolTestFixture.jsonObject(resumed)))
        #expect(ToolTestFixture.number(b, "epochs") == 3)
        // The carried state of both ranks' streams went through the checkpoint: the same bits as never stopping.
        for key in ["train_perplexity", "valid_perplexity"] {
            #expect(ToolTestFixture.number(a, key).map(\.bitPattern) == ToolTestFixture.number(b, key).map(\.bitPattern), "\(key)")
        }
    }

    @Test("A batch the ranks cannot share is one clear error and a non-zero exit")
    func batchNotDivisible() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let result = try Self.mpirun(2, tool, ["train", "--train", train, "--batch", "3", "--epochs", "1"] + Self.model,
                                     in: scratch.url)
        #expect(result.exited && result.status != 0, "\(result)")
        #expect(result.stderr.contains("Error: invalid argument: the batch of 3 streams cannot be shared by 2 ranks"), "\(result)")
        #expect(!result.stderr.contains("Error on rank 1"), "rank 0's message alone: \(result)")
    }

    @Test("A killed rank ends the whole job promptly with a non-zero exit; rank 0's last checkpoint stays valid")
    func killedRankEndsTheJob() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let job = try ToolTestRunner.start(
            URL(fileURLWithPath: "/bin/bash"),
            [MPITestRunner.wrapper.path, "-np", "2", tool.path, "train", "--train", train, "--epochs", "1000",
             "--batch", "4", "--checkpoint", "ck.safetensors", "--checkpoint-every", "5"] + Self.model,
            in: scratch.url)
        let checkpoint = scratch.url.appendingPathComponent("ck.safetensors")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: checkpoint.path) && Date() < deadline { usleep(50_000) }
        try #require(FileManager.default.fileExists(atPath: checkpoint.path), "no checkpoint after 60 s: \(job.stderrSoFar)")
        let rank1 = try #require(Self.processOfRank(1, runningIn: scratch.url), "rank 1 not found")
        kill(rank1, SIGKILL)
        let result = try job.finish(timeout: 30)
        #expect(!result.timedOut, "the job was still running 30 s after rank 1 was killed")
        #expect(result.exited && result.status != 0, "\(result)")
        _ = try TrainingCheckpoint.load(from: checkpoint)
    }

    /// The pid of the `rnncore` process of rank `rank` whose working directory is `directory` (Linux /proc).
    static func processOfRank(_ rank: Int, runningIn directory: URL) -> pid_t? {
        let wanted = directory.resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = pid_t(entry),
                  let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"),
                  URL(fileURLWithPath: cwd).resolvingSymlinksInPath().path == wanted,
                  let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ")
            else { continue }
            let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)"),
               let command = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
               command.hasPrefix("rnncore") {
                return pid
            }
        }
        return nil
    }
}
