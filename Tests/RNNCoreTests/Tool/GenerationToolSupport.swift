// A started `rnncore` whose standard input is a pipe the test writes to (for --interactive and --prompt -);
// standard output and error go to files, as in RunningTool.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A running `rnncore` fed through a pipe. Killed (SIGKILL) if still running when released.
final class PipedTool {
    let process = Process()
    private let input = Pipe()
    private let capture: URL
    private let outURL: URL, errURL: URL
    private let out: FileHandle, err: FileHandle

    init(_ executable: URL, _ arguments: [String], in directory: URL) throws {
        capture = FileManager.default.temporaryDirectory
            .appendingPathComponent("rnncore-piped-output-\(UUID().uuidString)", isDirectory: true)
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
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        try? out.close()
        try? err.close()
        try? FileManager.default.removeItem(at: capture)
    }

    /// Writes `text` to the tool's standard input.
    func send(_ text: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Closes standard input (end of file for the tool).
    func closeInput() throws {
        try input.fileHandleForWriting.close()
    }

    /// What the tool has written to standard output so far.
    var stdoutSoFar: String { String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self) }

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

    /// Waits for the process to end (closing its input), stopping it after `timeout` seconds.
    func finish(timeout: TimeInterval = 60) throws -> ToolTestResult {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        let timedOut = process.isRunning
        if timedOut { process.terminate() }
        process.waitUntilExit()
        return ToolTestResult(
            status: process.terminationStatus, reason: process.terminationReason,
            stdout: stdoutSoFar,
            stderr: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self), timedOut: timedOut)
    }
}
