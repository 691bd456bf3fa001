import Foundation
import Testing
import RNNCore
#if canImport(Glibc)
import Glibc
#endif

/// `rnncore train --out` killed by a signal in the middle of writing its model leaves the previous file
/// intact: saving writes a temporary file in the same directory, fsyncs it and renames it over the target only
/// when complete.
@Suite("Tool: a save killed half-way never damages the previous checkpoint")
struct CrashSafeSaveTests {
    @Test func killingTheProcessMidSaveKeepsThePreviousCheckpoint() throws {
        guard let executable = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, _, _) = try ToolTestFixture.writeWordSplits(in: scratch)
        let target = scratch.path("model.safetensors")
        // A wide hidden layer makes a 4 MB checkpoint: its save takes long enough to be caught in the act.
        func arguments(seed: Int) -> [String] {
            ["train", "--train", train, "--embed", "16", "--hidden", "1024", "--batch", "16", "--bptt", "10",
             "--epochs", "1", "--seed", String(seed), "--out", target]
        }
        let first = try ToolTestRunner.run(executable, arguments(seed: 1), in: scratch.url, timeout: 120)
        try #require(first.status == 0, "\(first)")
        let previous = try Data(contentsOf: URL(fileURLWithPath: target))

        // The second run is killed in the middle of writing its model, deterministically: a file-size limit of
        // 1 MiB (`ulimit -f`) makes the kernel end it with SIGXFSZ once the temporary file reaches that size, a
        // quarter of the way through the 4 MB save, whatever the speed of the machine.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -f 2048; exec \"$0\" \"$@\"", executable.path] + arguments(seed: 2)
        process.currentDirectoryURL = scratch.url
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        // Killed by SIGXFSZ (its default action), or, where the test runner's process ignores that signal (an
        // ignored signal stays ignored across exec), the write fails with EFBIG and the run ends with an error.
        #expect(process.terminationStatus != 0, "the cut save must not end as a success")
        if process.terminationReason == .uncaughtSignal {
            #expect(process.terminationStatus == SIGXFSZ)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
                .filter { $0.hasPrefix(".model.safetensors.tmp-") }
            #expect(leftovers.count == 1, "the killed save leaves its temporary file: \(leftovers)")
        }
        // The target is the previous checkpoint, byte for byte, and loads.
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == previous, "the target changed although the save was cut short")
        _ = try RNNLanguageModel.load(from: URL(fileURLWithPath: target))

        // The next run writing the same file removes the dead run's temporary file and saves normally.
        let third = try ToolTestRunner.run(executable, arguments(seed: 3), in: scratch.url, timeout: 120)
        #expect(third.exited && third.status == 0, "\(third)")
        let after = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
            .filter { $0.hasPrefix(".model.safetensors.tmp-") }
        #expect(after.isEmpty, "stale temporary files: \(after)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) != previous)
    }
}
