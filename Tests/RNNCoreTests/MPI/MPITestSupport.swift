// Running programs under Open MPI's mpirun from the tests: always through scripts/mpirun.sh, the one place that
// holds the flags containers and root need, with the `rnncore` tool tests' runner (output to files, a time limit).

import Foundation
import Testing

enum MPITestRunner {
    /// The package's root: the nearest directory above this file with a Package.swift.
    static let packageRoot: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/",
              !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()

    /// scripts/mpirun.sh: mpirun with --oversubscribe, --bind-to none, shared-memory transport only, and
    /// --allow-run-as-root when root.
    static var wrapper: URL { packageRoot.appendingPathComponent("scripts/mpirun.sh") }

    /// `mpirun` on PATH, or `nil` when Open MPI is not installed (the tests that need it are then skipped).
    static let mpirunURL: URL? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":")
            .map { URL(fileURLWithPath: String($0)).appendingPathComponent("mpirun") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    /// Why the mpirun tests are skipped when they are.
    static let skipReason: Comment = "mpirun is not installed (scripts/install-deps.sh --mpi installs openmpi-bin and libopenmpi-dev)"

    /// The built `rnncore-mpi-selftest`, beside the built `rnncore` (the same build directory), or an issue saying
    /// it must be built first (and `nil`).
    static func requireSelftest(sourceLocation: SourceLocation = #_sourceLocation) -> URL? {
        let url = ToolTestRunner.executableURL?.deletingLastPathComponent().appendingPathComponent("rnncore-mpi-selftest")
        guard let url, FileManager.default.isExecutableFile(atPath: url.path) else {
            Issue.record("rnncore-mpi-selftest was not found beside the rnncore executable: run `swift build` first",
                         sourceLocation: sourceLocation)
            return nil
        }
        return url
    }

    /// Runs `scripts/mpirun.sh -np ranks executable arguments…` in a scratch directory; mpirun (and with it every
    /// rank) is stopped after `timeout` seconds.
    static func run(ranks: Int, _ executable: URL, _ arguments: [String] = [],
                    timeout: TimeInterval = 60) throws -> ToolTestResult {
        let scratch = try ToolTestScratchDirectory()
        return try ToolTestRunner.run(URL(fileURLWithPath: "/bin/bash"),
                                      [wrapper.path, "-np", String(ranks), executable.path] + arguments,
                                      in: scratch.url, timeout: timeout)
    }
}
