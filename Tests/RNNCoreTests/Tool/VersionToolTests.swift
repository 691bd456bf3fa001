// `rnncore --version`: the library version, the ABI version, the kernels' thread count and the OpenBLAS
// configuration, status 0.

import CRNNCore
import Foundation
import Testing

@Suite("rnncore --version")
struct VersionToolTests {
    @Test("prints the library version, the ABI version, the thread count and the OpenBLAS configuration, and exits 0")
    func printsFourLines() throws {
        guard let executable = ToolTestRunner.requireExecutable() else { return }
        let directory = FileManager.default.temporaryDirectory
        let result = try ToolTestRunner.run(executable, ["--version"], in: directory)
        #expect(result.exited && result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        #expect(lines.count == 4, "\(result)")
        guard lines.count == 4 else { return }
        #expect(lines[0] == "rnncore \(String(cString: rnncore_version()))")
        #expect(lines[1] == "ABI \(rnncore_abi_version())")
        // The tool is a separate process: its count comes from the same environment, so it equals this one's.
        #expect(lines[2].hasPrefix("threads: \(rnncore_threads()) "), "\(lines[2])")
        #expect(lines[3].hasPrefix("OpenBLAS: "))
        // The build configuration OpenBLAS reports ("OpenBLAS 0.3.21 DYNAMIC_ARCH …") and its thread count (1: the
        // library's pool replaces OpenBLAS's threading).
        #expect(lines[3].contains("OpenBLAS") && lines[3].hasSuffix(" threads"), "\(lines[3])")
    }
}
