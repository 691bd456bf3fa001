// `rnncore` against hostile options and paths: every numeric option at 0, negative, NaN and ±∞; runs whose memory
// would exceed the machine; outputs that collide with inputs or each other, that cannot be written, that are device
// nodes, FIFOs or symlinks; two runs on the same files; a resume from a checkpoint that names other output paths.
// Each case ends with a readable message and a non-zero status before anything is read or written, and no input is
// ever changed.

import Foundation
import RNNCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Tool: hostile options and paths")
struct ToolHostileInputTests {
    static let model = ["--embed", "8", "--hidden", "16", "--batch", "4", "--bptt", "5"]

    /// A numeric option and a value the validator must refuse.
    struct BadNumber: Sendable, CustomTestStringConvertible {
        var command: String
        var option: String
        var value: String
        var testDescription: String { "\(command) \(option) \(value)" }
    }

    /// Every numeric option with every value outside its domain: 0 where 0 is not allowed, negative, NaN, ±∞.
    static let badNumbers: [BadNumber] = {
        var cases: [BadNumber] = []
        func add(_ command: String, _ option: String, _ values: [String]) {
            cases += values.map { BadNumber(command: command, option: option, value: $0) }
        }
        let integers = ["-1", "-7", "nan", "inf"]
        for option in ["--embed", "--hidden", "--layers", "--batch", "--bptt", "--epochs", "--lr-decay-start"] {
            add("train", option, ["0"] + integers)
        }
        add("train", "--bptt-truncation", integers)
        add("train", "--checkpoint-every", integers)
        add("train", "--seed", ["-1", "nan"])
        add("train", "--lr", ["0", "-1", "-0.5", "nan", "inf", "-inf"])
        add("train", "--lr-decay", ["0", "0.5", "-2", "nan", "inf", "-inf"])
        add("train", "--clip", ["-1", "nan", "inf", "-inf"])
        add("train", "--dropout", ["-0.1", "1", "2", "nan", "inf", "-inf"])
        add("train", "--max-memory", ["0", "-1", "nan", "inf", "12Q"])
        add("eval", "--batch", ["0"] + integers)
        add("eval", "--bptt", ["0"] + integers)
        add("generate", "--count", integers)
        add("generate", "--temperature", ["-1", "nan", "inf", "-inf"])
        add("generate", "--top-k", ["0"] + integers)
        add("bench", "--steps", ["0"] + integers)
        add("bench", "--warmup", integers)
        add("bench", "--generate", integers)
        return cases
    }()

    @Test("A numeric option outside its domain is refused with a message naming it (exit 64)", arguments: badNumbers)
    func numericOptionOutOfDomain(_ bad: BadNumber) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        var arguments = [bad.command, bad.option, bad.value]
        switch bad.command {
        case "eval": arguments += ["--model", "m.safetensors", "--data", "t.txt"]
        case "generate": arguments += ["--model", "m.safetensors"]
        default: break
        }
        let result = try ToolTestRunner.run(tool, arguments, in: scratch.url, timeout: 30)
        #expect(result.exited && result.status == 64, "\(result)")
        #expect(result.stderr.contains(bad.option), "the message names the option: \(result)")
        #expect(!result.stderr.contains("Missing value"), "a negative value reaches the validator: \(result)")
        #expect(!result.stdout.contains("epoch"), "nothing was trained: \(result)")
        #expect((try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)).isEmpty, "nothing was written")
    }

    @Test("A run whose memory would exceed the machine is refused with the estimate, before allocating")
    func memoryEstimateRefusesHugeModels() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        // 8 layers of 60000: about 230 GB of weights alone; no machine the tests run on has that much to spare.
        let huge = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--embed", "60000", "--hidden", "60000", "--layers", "8"],
            in: scratch.url, timeout: 60)
        #expect(huge.exited && huge.status == 64, "\(huge)")
        #expect(huge.stderr.contains("this run needs") && huge.stderr.contains("GB"), "\(huge)")
        #expect(!huge.stderr.contains("Fatal error"), "\(huge)")
        // --max-memory sets the limit: a tiny one refuses a small run, a generous one lets it train.
        let refused = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "1", "--max-memory", "1K"] + Self.model, in: scratch.url)
        #expect(refused.exited && refused.status == 64 && refused.stderr.contains("--max-memory"), "\(refused)")
        let allowed = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "1", "--max-memory", "2G"] + Self.model, in: scratch.url)
        #expect(allowed.exited && allowed.status == 0, "\(allowed)")
    }

    /// Two paths of one run that name the same file.
    enum Collision: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case outIsTrain, outIsValid, plotIsTest, checkpointIsTrain, outIsPlot, checkpointIsOutDotted,
             outIsTrainHardLink, outIsTrainSymlink, defaultCheckpointIsTrain
        var testDescription: String { rawValue }
    }

    @Test("An output that is an input or another output is refused before anything is read or written",
          arguments: Collision.allCases)
    func collidingPaths(_ collision: Collision) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let inputs = ["--train", "train.txt", "--valid", "valid.txt", "--test", "test.txt"]
        let arguments: [String]
        let named: [String]
        switch collision {
        case .outIsTrain: (arguments, named) = (["--out", "train.txt"], ["--out", "--train"])
        case .outIsValid: (arguments, named) = (["--out", valid], ["--out", "--valid"])
        case .plotIsTest: (arguments, named) = (["--plot", "./test.txt"], ["--plot", "--test"])
        case .checkpointIsTrain:
            (arguments, named) = (["--checkpoint", "train.txt", "--checkpoint-every", "5"], ["--checkpoint", "--train"])
        case .outIsPlot: (arguments, named) = (["--out", "m.safetensors", "--plot", "m.safetensors"], ["--out", "--plot"])
        case .checkpointIsOutDotted:
            (arguments, named) = (["--out", "m.safetensors", "--checkpoint", "./m.safetensors"], ["--out", "--checkpoint"])
        case .outIsTrainHardLink:
            try FileManager.default.linkItem(atPath: train, toPath: scratch.path("link.txt"))
            (arguments, named) = (["--out", "link.txt"], ["--out", "--train"])
        case .outIsTrainSymlink:
            try FileManager.default.createSymbolicLink(atPath: scratch.path("sym.txt"), withDestinationPath: train)
            (arguments, named) = (["--out", "sym.txt"], ["--out", "--train"])
        case .defaultCheckpointIsTrain:
            // --out x.safetensors puts the checkpoint at x.resume.safetensors: here that is the training text.
            let renamed = scratch.path("x.resume.safetensors")
            try FileManager.default.copyItem(atPath: train, toPath: renamed)
            let result = try ToolTestRunner.run(
                tool, ["train", "--train", "x.resume.safetensors", "--out", "x.safetensors", "--checkpoint-every", "5"]
                    + Self.model, in: scratch.url)
            #expect(result.exited && result.status == 64, "\(result)")
            #expect(result.stderr.contains("the default --checkpoint path") && result.stderr.contains("--train"), "\(result)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: renamed)) == Data(contentsOf: URL(fileURLWithPath: train)))
            return
        }
        let before = try [train, valid, test].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let result = try ToolTestRunner.run(tool, ["train"] + inputs + arguments + Self.model, in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        for option in named { #expect(result.stderr.contains(option), "the message names \(option): \(result)") }
        #expect(result.stderr.contains("are the same file"), "\(result)")
        #expect(!result.stdout.contains("data:"), "refused before reading: \(result)")
        let after = try [train, valid, test].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(before == after, "no input changed")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("m.safetensors")))
    }

    /// An output location that cannot be written.
    enum BadOutput: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case outMissingDirectory, plotMissingDirectory, checkpointMissingDirectory, outIsDirectory, outIsFIFO,
             plotIsFIFO, outIsCharacterDevice, checkpointIsCharacterDevice, outUnderAFile
        var testDescription: String { rawValue }
    }

    @Test("An output that cannot be written is refused before training starts", arguments: BadOutput.allCases)
    func unwritableOutputs(_ bad: BadOutput) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let node = scratch.path("node")
        let arguments: [String]
        var keyword = ""
        switch bad {
        case .outMissingDirectory: (arguments, keyword) = (["--out", "missing/m.safetensors"], "missing")
        case .plotMissingDirectory: (arguments, keyword) = (["--plot", "missing/x.svg"], "missing")
        case .checkpointMissingDirectory:
            (arguments, keyword) = (["--checkpoint", "missing/c.safetensors", "--checkpoint-every", "5"], "missing")
        case .outIsDirectory:
            try FileManager.default.createDirectory(atPath: node, withIntermediateDirectories: false)
            (arguments, keyword) = (["--out", "node"], "directory")
        case .outIsFIFO, .plotIsFIFO:
            try #require(mkfifo(node, 0o644) == 0)
            (arguments, keyword) = ([bad == .outIsFIFO ? "--out" : "--plot", "node"], "FIFO")
        case .outIsCharacterDevice, .checkpointIsCharacterDevice:
            // A copy of /dev/null's node in the scratch folder (needs CAP_MKNOD; the real /dev is never touched).
            guard mknod(node, S_IFCHR | 0o666, dev_t(1 << 8 | 3)  /* makedev(1, 3) */) == 0 else { return }
            arguments = bad == .outIsCharacterDevice ? ["--out", "node"] : ["--checkpoint", "node", "--checkpoint-every", "5"]
            keyword = "character device"
        case .outUnderAFile: (arguments, keyword) = (["--out", "train.txt/m.safetensors"], "train.txt")
        }
        let result = try ToolTestRunner.run(tool, ["train", "--train", train] + arguments + Self.model, in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        #expect(result.stderr.contains(keyword), "the message says why (\(keyword)): \(result)")
        #expect(!result.stdout.contains("epoch"), "refused before training: \(result)")
        #expect(!result.stderr.contains("Error Domain"), "\(result)")
        var info = stat()
        if lstat(node, &info) == 0, bad == .outIsCharacterDevice || bad == .checkpointIsCharacterDevice {
            #expect(info.st_mode & S_IFMT == S_IFCHR, "the device node is still a device node")
        }
    }

    @Test("A symlink given as --out is written through: the link stays, the file it names gets the model")
    func symlinkOutputIsWrittenThrough() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.path("models"), withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: scratch.path("latest.safetensors"),
                                                   withDestinationPath: "models/m.safetensors")
        let result = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "1", "--out", "latest.safetensors"] + Self.model, in: scratch.url)
        #expect(result.exited && result.status == 0, "\(result)")
        let destination = try FileManager.default.destinationOfSymbolicLink(atPath: scratch.path("latest.safetensors"))
        #expect(destination == "models/m.safetensors")
        _ = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("models/m.safetensors"))
    }

    @Test("A second run writing the same --out while the first is still training is refused")
    func concurrentRunsOnOneOutputAreRefused() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let first = try ToolTestRunner.start(
            tool, ["train", "--train", train, "--epochs", "1000", "--out", "m.safetensors"] + Self.model, in: scratch.url)
        // Once the first run reports an epoch it holds its locks.
        let deadline = Date().addingTimeInterval(120)
        while first.process.isRunning && Date() < deadline, !first.stderrSoFar.contains("epoch 1/") { usleep(5_000) }
        try #require(first.process.isRunning, "the first run should still be training")
        let second = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "1", "--out", "./m.safetensors"] + Self.model, in: scratch.url)
        #expect(second.exited && second.status == 64, "\(second)")
        #expect(second.stderr.contains("another rnncore train is writing"), "\(second)")
        // When the first run dies (even by SIGKILL), the lock goes with it.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        let third = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "1", "--out", "m.safetensors"] + Self.model, in: scratch.url)
        #expect(third.exited && third.status == 0, "\(third)")
    }

    @Test("Temporary files left by a killed run are removed by the next run writing the same file")
    func staleTemporariesAreRemoved() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        // The PID of a process that has exited.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let stale = try scratch.write("half a model", to: ".m.safetensors.tmp-\(gone.processIdentifier)-1a2b3c")
        let live = try scratch.write("someone else's", to: ".m.safetensors.tmp-\(getpid())-4d5e6f")
        let result = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "1", "--out", "m.safetensors"] + Self.model, in: scratch.url)
        #expect(result.exited && result.status == 0, "\(result)")
        #expect(!FileManager.default.fileExists(atPath: stale), "a dead process's temporary file is removed")
        #expect(FileManager.default.fileExists(atPath: live), "a live process's temporary file is kept")
    }

    @Test("When the model cannot be written at the end, it is saved elsewhere, the run says where and exits 1")
    func failedFinalWriteRescuesTheModel() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        _ = try ToolTestFixture.writeWordSplits(in: scratch)
        // The training text comes through a FIFO, so the run waits (after its checks) until the test has removed
        // the output folder: the final write then fails, deterministically.
        let fifo = scratch.path("train.fifo")
        try #require(mkfifo(fifo, 0o644) == 0)
        try FileManager.default.createDirectory(atPath: scratch.path("gone"), withIntermediateDirectories: false)
        let run = try ToolTestRunner.start(
            tool, ["train", "--train", "train.fifo", "--epochs", "1", "--out", "gone/m.safetensors"] + Self.model,
            in: scratch.url)
        let process = run.process
        // The FIFO opens for writing once the run has opened it for reading, i.e. after its checks (polled without
        // blocking, so a run that ends early cannot hang the test).
        var writer: Int32 = -1
        let openDeadline = Date().addingTimeInterval(60)
        while writer < 0 && process.isRunning && Date() < openDeadline {
            writer = open(fifo, O_WRONLY | O_NONBLOCK)
            if writer < 0 { usleep(5_000) }
        }
        try #require(writer >= 0, "the run never opened its training text: \(run.stderrSoFar)")
        _ = fcntl(writer, F_SETFL, fcntl(writer, F_GETFL) & ~O_NONBLOCK)
        try FileManager.default.removeItem(atPath: scratch.path("gone"))
        let text = Array(ToolTestFixture.words(sentences: 430, seed: 1).utf8)
        text.withUnsafeBytes { _ = Glibc.write(writer, $0.baseAddress, $0.count) }
        close(writer)
        let result = try run.finish(timeout: 120)
        let stderr = result.stderr
        #expect(result.exited && result.status != 0, "\(stderr)")
        #expect(stderr.contains("cannot write the model to gone/m.safetensors"), "\(stderr)")
        #expect(stderr.contains("was saved to"), "\(stderr)")
        let rescued = scratch.path("m.rescued.safetensors")
        #expect(stderr.contains(rescued), "\(stderr)")
        _ = try RNNLanguageModel.load(from: URL(fileURLWithPath: rescued))
    }

    @Test("--resume writes only where its own command line says; output paths stored in the checkpoint are ignored")
    func resumeIgnoresStoredOutputPaths() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let first = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--epochs", "2", "--checkpoint-every", "1000", "--out", "r.safetensors"]
                + Self.model, in: scratch.url)
        try #require(first.exited && first.status == 0, "\(first)")
        // Make the checkpoint an epoch-1 one of an older version that names a victim file as its --out.
        let victim = try scratch.write("precious notes\n", to: "victim.txt")
        var file = try SafeTensorsFile.read(from: scratch.url.appendingPathComponent("r.resume.safetensors"))
        let key = "rnncore_train_run"
        let text = try #require(file.metadata[key])
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        var record = try #require(parsed as? [String: Any])
        var paths = record["paths"] as? [String: String] ?? [:]
        paths["out"] = victim
        paths["plot"] = victim
        record["paths"] = paths
        file.metadata[key] = String(decoding: try JSONSerialization.data(withJSONObject: record), as: UTF8.self)
        try file.write(to: scratch.url.appendingPathComponent("r.resume.safetensors"))
        try FileManager.default.removeItem(atPath: scratch.path("r.safetensors"))

        // The resumed run trains its second epoch and writes its model next to the checkpoint, not to the victim.
        let resumed = try ToolTestRunner.run(tool, ["train", "--resume", "r.resume.safetensors"], in: scratch.url)
        #expect(resumed.exited && resumed.status == 0, "\(resumed)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious notes\n", "the victim is untouched")
        #expect(resumed.stdout.contains("model written to r.safetensors"), "\(resumed)")
        _ = try RNNLanguageModel.load(from: scratch.url.appendingPathComponent("r.safetensors"))

        // A file RNNCore did not write at that default path is never replaced.
        try scratch.write("not a model\n", to: "r.safetensors")
        let refused = try ToolTestRunner.run(tool, ["train", "--resume", "r.resume.safetensors"], in: scratch.url)
        #expect(refused.exited && refused.status == 64, "\(refused)")
        #expect(refused.stderr.contains("was not written by RNNCore") || refused.stderr.contains("not a model or training checkpoint written by RNNCore"), "\(refused)")
        #expect(try String(contentsOfFile: scratch.path("r.safetensors"), encoding: .utf8) == "not a model\n")
    }

    @Test("--resume with another training text says so (not a vocabulary error about the validation text)")
    func resumeWithAnotherTrainingText() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let saved = try ToolTestRunner.run(
            tool, ["train", "--train", train, "--valid", valid, "--epochs", "1", "--checkpoint-every", "50",
                   "--checkpoint", "r.safetensors"] + Self.model, in: scratch.url)
        try #require(saved.exited && saved.status == 0, "\(saved)")
        let other = try scratch.write("a completely different text with other words\n", to: "other.txt")
        let result = try ToolTestRunner.run(tool, ["train", "--resume", "r.safetensors", "--train", other], in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        #expect(result.stderr.contains("the training text is not the one this run was trained on"), "\(result)")
        #expect(!result.stderr.contains("valid.txt"), "\(result)")
    }
    /// A training text and what the tool must say of it (`nil`: it trains).
    enum HostileCorpus: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case empty, singleToken, onlyLineEnds, invalidUTF8, nulBytes, directory, devZero, crlf, missing, longLine
        var testDescription: String { rawValue }

        /// Words the error message must hold, or `nil` when the run must succeed.
        var keywords: [String]? {
            switch self {
            case .empty: ["is empty"]
            case .singleToken: ["too few"]
            case .onlyLineEnds, .nulBytes, .crlf: nil
            case .invalidUTF8: ["not valid UTF-8", "byte offset 2"]
            case .directory: ["is a directory"]
            case .devZero, .longLine: ["line 1", "more than the limit"]
            case .missing: ["absent.txt"]
            }
        }
    }

    @Test("Hostile training texts end with a readable message naming the file, or train when they are valid",
          arguments: HostileCorpus.allCases)
    func hostileCorpora(_ corpus: HostileCorpus) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let path: String
        switch corpus {
        case .empty: path = try scratch.write("", to: "t.txt")
        case .singleToken: path = try scratch.write("word", to: "t.txt")
        case .onlyLineEnds: path = try scratch.write("\n\n\n\n", to: "t.txt")
        case .invalidUTF8: path = try scratch.write([0x61, 0x62, 0xFF, 0xFE, 0x63, 0x0A], to: "t.txt")
        case .nulBytes: path = try scratch.write([0x61, 0x00, 0x62, 0x20, 0x63, 0x0A], to: "t.txt")
        case .directory:
            path = scratch.path("t.txt")
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        case .devZero: path = "/dev/zero"  // read only: refused after its first over-long line, not after 4 GiB
        case .crlf: path = try scratch.write("a b\r\nc d\r\na b\r\n", to: "t.txt")
        case .missing: path = scratch.path("absent.txt")
        case .longLine: path = try scratch.write([UInt8](repeating: 0x61, count: (1 << 20) + 10), to: "t.txt")
        }
        let result = try ToolTestRunner.run(
            tool, ["train", "--train", path, "--epochs", "1", "--embed", "4", "--hidden", "4", "--batch", "1",
                   "--bptt", "2", "--json"], in: scratch.url, timeout: 60)
        #expect(!result.stderr.contains("Error Domain") && !result.stderr.contains("Fatal error"), "\(result)")
        guard let keywords = corpus.keywords else {
            #expect(result.exited && result.status == 0, "\(result)")
            if corpus == .crlf, let metrics = ToolTestFixture.jsonObject(result) {
                // a, b, c, d and <eos>: the "\r" is no token of its own.
                #expect(ToolTestFixture.number(metrics, "vocabulary_size") == 5, "\(metrics)")
            }
            return
        }
        #expect(result.exited && result.status != 0, "\(result)")
        #expect(result.stderr.contains(corpus == .missing ? "absent.txt" : (corpus == .devZero ? "/dev/zero" : "t.txt")), "\(result)")
        for word in keywords { #expect(result.stderr.contains(word), "stderr should mention \(word): \(result)") }
        #expect(result.stdout.isEmpty, "no JSON for a run that did not train: \(result)")
    }
}
