// `rnncore --version`: the library version, the ABI version and the OpenBLAS configuration, status 0.

import CRNNCore
import Foundation
import Testing

@Suite("rnncore --version")
struct VersionToolTests {
    @Test("prints the library version, the ABI version and the OpenBLAS configuration, and exits 0")
    func printsThreeLines() throws {
        guard let executable = ToolTestRunner.requireExecutable() else { return }
        let directory = FileManager.default.temporaryDirectory
        let result = try ToolTestRunner.run(executable, ["--version"], in: directory)
        #expect(result.exited && result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        #expect(lines.count == 3, "\(result)")
        guard lines.count == 3 else { return }
        #expect(lines[0] == "rnncore \(String(cString: rnncore_version()))")
        #expect(lines[1] == "ABI \(rnncore_abi_version())")
        #expect(lines[2].hasPrefix("OpenBLAS: "))
        // The build configuration OpenBLAS reports ("OpenBLAS 0.3.21 DYNAMIC_ARCH …") and its thread count.
        #expect(lines[2].contains("OpenBLAS") && lines[2].hasSuffix(" threads"), "\(lines[2])")
    }
}
