import Foundation
import Testing
import RNNCore
#if canImport(Glibc)
import Glibc
#endif

/// `rnncore train --out` killed (SIGKILL) in the middle of writing its checkpoint leaves the previous checkpoint
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

        var interrupted = 0
        for attempt in 0..<8 where interrupted < 1 {
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments(seed: 2 + attempt)
            process.currentDirectoryURL = scratch.url
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Kill the moment the temporary file appears: the process is then writing the new checkpoint.
            let deadline = Date().addingTimeInterval(120)
            while process.isRunning && Date() < deadline {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: scratch.url.path)) ?? []
                if names.contains(where: { $0.hasPrefix(".model.safetensors.tmp-") }) {
                    kill(process.processIdentifier, SIGKILL)
                    break
                }
                usleep(200)
            }
            process.waitUntilExit()
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
                .filter { $0.hasPrefix(".model.safetensors.tmp-") }
            let current = try Data(contentsOf: URL(fileURLWithPath: target))
            // Whatever happened, the target is a complete, loadable checkpoint.
            _ = try RNNLanguageModel.load(from: URL(fileURLWithPath: target))
            if !leftovers.isEmpty {
                // Killed before the rename: the previous checkpoint must be there byte for byte.
                interrupted += 1
                #expect(current == previous, "attempt \(attempt): the target changed although the save was cut short")
                for name in leftovers { try FileManager.default.removeItem(atPath: scratch.path(name)) }
            }
        }
        #expect(interrupted >= 1, "no kill landed inside a save in 8 attempts; the test did not exercise it")
    }
}
