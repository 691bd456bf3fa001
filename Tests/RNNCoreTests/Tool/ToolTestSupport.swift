// Running the `rnncore` executable from the tests: locating the built product, running it with a time limit and
// capturing its output, and generating the text fixtures it trains on.

import Foundation
import RNNCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What one run of the tool produced.
struct ToolTestResult: CustomStringConvertible {
    /// The exit status, or the signal number when the process was killed by a signal.
    var status: Int32
    /// Whether the process exited or died of a signal.
    var reason: Process.TerminationReason
    /// Standard output, decoded as UTF-8.
    var stdout: String
    /// Standard error, decoded as UTF-8.
    var stderr: String
    /// Whether the run was stopped at the time limit.
    var timedOut: Bool

    /// Whether the process exited by itself (no signal, no time-out).
    var exited: Bool { reason == .exit && !timedOut }

    /// The last non-empty line of standard output.
    var lastStdoutLine: String? {
        stdout.split(separator: "\n", omittingEmptySubsequences: true).last.map(String.init)
    }

    var description: String {
        "status \(status) (\(reason == .exit ? "exit" : "signal")\(timedOut ? ", timed out" : ""))\n"
            + "stdout:\n\(stdout)\nstderr:\n\(stderr)"
    }
}

/// Locates and runs the `rnncore` executable.
enum ToolTestRunner {
    /// The built `rnncore`: beside the test bundle (the same build configuration), else in `.build/debug` or
    /// `.build/<triple>/debug` of the package that holds this file. `nil` when none exists.
    static let executableURL: URL? = {
        let fileManager = FileManager.default
        var directories: [URL] = []
        if let main = Bundle.main.executableURL { directories.append(main.deletingLastPathComponent()) }
        if let first = CommandLine.arguments.first, !first.isEmpty {
            directories.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if fileManager.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                let build = directory.appendingPathComponent(".build")
                directories.append(build.appendingPathComponent("debug"))
                let triples = (try? fileManager.contentsOfDirectory(atPath: build.path)) ?? []
                for triple in triples.sorted() where triple.contains("-") {
                    directories.append(build.appendingPathComponent(triple).appendingPathComponent("debug"))
                }
                break
            }
            directory = directory.deletingLastPathComponent()
        }
        return directories
            .map { $0.appendingPathComponent("rnncore") }
            .first { fileManager.isExecutableFile(atPath: $0.path) }
    }()

    /// The executable, or an issue saying it must be built first (and `nil`).
    static func requireExecutable(sourceLocation: SourceLocation = #_sourceLocation) -> URL? {
        guard let url = executableURL else {
            Issue.record("the rnncore executable was not found beside the tests or in .build/debug: run `swift build` first",
                         sourceLocation: sourceLocation)
            return nil
        }
        return url
    }

    /// Runs `rnncore arguments…` in `directory`, stopping it after `timeout` seconds.
    static func run(_ executable: URL, _ arguments: [String], in directory: URL,
                    timeout: TimeInterval = 60) throws -> ToolTestResult {
        try start(executable, arguments, in: directory).finish(timeout: timeout)
    }

    /// Starts `rnncore arguments…` in `directory` and returns at once; ``RunningTool/finish(timeout:)`` waits.
    static func start(_ executable: URL, _ arguments: [String], in directory: URL) throws -> RunningTool {
        try RunningTool(executable, arguments, in: directory)
    }
}

/// A started `rnncore` process whose output goes to files, not pipes (a chatty child can never block on a full
/// pipe), and whose standard input is nothing or, with `pipedInput`, a pipe the test writes to (for --interactive
/// and --prompt -). Killed (SIGKILL) if still running when released.
final class RunningTool {
    let process = Process()
    private let input: Pipe?
    private let capture: URL
    private let outURL: URL, errURL: URL
    private let out: FileHandle, err: FileHandle

    init(_ executable: URL, _ arguments: [String], in directory: URL, pipedInput: Bool = false) throws {
        capture = FileManager.default.temporaryDirectory
            .appendingPathComponent("rnncore-tool-output-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: capture, withIntermediateDirectories: true)
        outURL = capture.appendingPathComponent("stdout")
        errURL = capture.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        out = try FileHandle(forWritingTo: outURL)
        err = try FileHandle(forWritingTo: errURL)
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        input = pipedInput ? Pipe() : nil
        process.standardInput = input ?? FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? input?.fileHandleForWriting.close()
        try? out.close()
        try? err.close()
        try? FileManager.default.removeItem(at: capture)
    }

    /// What the process has written to standard error so far.
    var stderrSoFar: String { String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self) }

    /// What the process has written to standard output so far.
    var stdoutSoFar: String { String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self) }

    /// Writes `text` to the process's standard input (started with `pipedInput`).
    func send(_ text: String) throws {
        guard let input else { preconditionFailure("send(_:) needs a RunningTool started with pipedInput: true") }
        try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Waits until standard output holds at least `lines` line ends, or the process ended, or `timeout` seconds
    /// passed (a limit against hanging, not a measurement); returns whether the lines came.
    func waitForStdout(lines: Int, timeout: TimeInterval = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stdoutSoFar.count(where: { $0 == "\n" }) >= lines { return true }
            if !process.isRunning { break }
            usleep(5_000)
        }
        return stdoutSoFar.count(where: { $0 == "\n" }) >= lines
    }

    /// Waits for the process to end (closing a piped standard input first), stopping it after `timeout` seconds,
    /// and returns what it produced.
    func finish(timeout: TimeInterval = 60) throws -> ToolTestResult {
        try? input?.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        let timedOut = process.isRunning
        if timedOut { process.terminate() }
        process.waitUntilExit()
        return ToolTestResult(
            status: process.terminationStatus, reason: process.terminationReason,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: stderrSoFar, timedOut: timedOut)
    }
}

/// A fresh temporary directory for one tool test, removed when the object goes away.
final class ToolTestScratchDirectory {
    /// The directory.
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("rnncore-tool-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    /// The path of `name` inside the directory (not created).
    func path(_ name: String) -> String {
        url.appendingPathComponent(name).path
    }

    /// Writes `bytes` to `name` and returns its path.
    @discardableResult
    func write(_ bytes: [UInt8], to name: String) throws -> String {
        try Data(bytes).write(to: url.appendingPathComponent(name))
        return path(name)
    }

    /// Writes `text` as UTF-8 to `name` and returns its path.
    @discardableResult
    func write(_ text: String, to name: String) throws -> String {
        try write(Array(text.utf8), to: name)
    }
}

/// Generated texts for the tool: a fixed sentence pattern with seeded word choices.
enum ToolTestFixture {
    static let subjects = ["the cat", "the dog", "a bird", "my fish", "the old man"]
    static let verbs = ["sees", "likes", "chases", "finds"]
    static let objects = ["the ball", "a red hat", "the big tree", "some food", "the moon"]
    static let endings = ["today", "again", "at night", "slowly"]

    /// `sentences` lines "SUBJECT VERB OBJECT ENDING" (about 7 tokens each with `<eos>`).
    static func words(sentences: Int, seed: UInt64) -> String {
        var rng = Xoshiro256StarStar(seed: seed)
        func pick(_ options: [String]) -> String { options[rng.nextInt(below: options.count)] }
        return (0..<sentences)
            .map { _ in "\(pick(subjects)) \(pick(verbs)) \(pick(objects)) \(pick(endings))" }
            .joined(separator: "\n") + "\n"
    }

    /// The distinct words of the pattern, `<eos>` included.
    static var vocabulary: Set<String> {
        Set((subjects + verbs + objects + endings).flatMap { $0.split(separator: " ").map(String.init) } + ["<eos>"])
    }

    /// Training (~3 000 tokens), validation and test files in `scratch`.
    static func writeWordSplits(in scratch: ToolTestScratchDirectory) throws -> (train: String, valid: String, test: String) {
        (try scratch.write(words(sentences: 430, seed: 1), to: "train.txt"),
         try scratch.write(words(sentences: 50, seed: 2), to: "valid.txt"),
         try scratch.write(words(sentences: 50, seed: 3), to: "test.txt"))
    }

    /// A checkpoint of an untrained model over `tokens` (word level), written with the library.
    @discardableResult
    static func writeCheckpoint(tokens: [String], to name: String, in scratch: ToolTestScratchDirectory) throws -> String {
        let vocabulary = try Vocabulary(tokens: tokens, level: .word)
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: tokens.count, embeddingSize: 4, hiddenSize: 4), seed: 1)
        try model.save(to: scratch.url.appendingPathComponent(name), vocabulary: vocabulary)
        return scratch.path(name)
    }

    /// The JSON object on the last line of standard output, or an issue and `nil`.
    static func jsonObject(_ result: ToolTestResult, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any]? {
        guard let line = result.lastStdoutLine,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            Issue.record("standard output does not end with a JSON object:\n\(result)", sourceLocation: sourceLocation)
            return nil
        }
        return object
    }

    /// The number stored under `key`, or `nil`.
    static func number(_ object: [String: Any], _ key: String) -> Double? {
        (object[key] as? NSNumber)?.doubleValue
    }
}
