import ArgumentParser
import CRNNCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `rnncore` command-line tool: train, evaluate and sample RNN language models.
@main
struct RNNCoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnncore",
        abstract: "Train, evaluate and sample recurrent neural network language models on the CPU.",
        version: versionText,
        subcommands: [Train.self, Recipes.self, Evaluate.self, Generate.self, Info.self, Export.self, Download.self, Bench.self]
    )

    /// Parses and runs a command; an error thrown while running is printed as one readable sentence (no
    /// Foundation `Error Domain=…` dumps) and ends the process with status 1 (64 for a refused option).
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            try command.run()
        } catch let error as ValidationError {
            // A refusal found while running (files, memory, a checkpoint that does not fit): the message alone,
            // without the usage text that option errors get.
            FileHandle.standardError.write(Data("Error: \(error.message)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: ToolFailure.readable(error))
        }
    }
}

/// An error of a command, rendered for people.
struct ToolFailure: Error, CustomStringConvertible {
    var description: String

    /// `error` unchanged when the argument parser renders it well (validation errors, exit codes) or it already
    /// describes itself; a Foundation error becomes "<operation> <path>: <reason>".
    static func readable(_ error: any Error) -> any Error {
        switch error {
        case is ValidationError, is ExitCode, is CleanExit: return error
        default: break
        }
        let text = String(describing: error)
        guard Swift.type(of: error) is NSError.Type || text.contains("Error Domain=") else { return error }
        return ToolFailure(description: foundationMessage(error as NSError))
    }

    /// "cannot write /x/y.svg: No such file or directory" from an NSError of the Cocoa or POSIX domain.
    static func foundationMessage(_ error: NSError) -> String {
        let path = (error.userInfo[NSFilePathErrorKey] as? String)
            ?? (error.userInfo[NSURLErrorKey] as? URL)?.path
        var reason: String
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            reason = String(cString: strerror(Int32(underlying.code)))
        } else if error.domain == NSPOSIXErrorDomain {
            reason = String(cString: strerror(Int32(error.code)))
        } else {
            reason = error.localizedFailureReason ?? error.localizedDescription
        }
        if reason.contains("Error Domain=") { reason = "error \(error.code)" }
        let isWrite = (CocoaError.Code.fileWriteUnknown.rawValue...CocoaError.Code.fileWriteVolumeReadOnly.rawValue)
            .contains(error.code)
        guard let path else { return reason }
        return "cannot \(isWrite ? "write" : "read") \(path): \(reason)"
    }
}

// MARK: - rnncore --version

extension RNNCoreCommand {
    /// The text of `rnncore --version`: the library's version and ABI version, and the OpenBLAS build
    /// configuration with its thread count.
    static var versionText: String {
        """
        rnncore \(String(cString: rnncore_version()))
        ABI \(rnncore_abi_version())
        threads: \(rnncore_threads()) (RNNCORE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the processors)
        OpenBLAS: \(openBLASDescription)
        """
    }

    /// "<openblas_get_config()>, <n> threads", looked up at run time in the process's global symbols (the
    /// tool links OpenBLAS): no cblas.h or extra C entry point is needed, and another BLAS gives "unknown".
    static var openBLASDescription: String {
        guard let process = dlopen(nil, RTLD_NOW) else { return "unknown" }
        defer { dlclose(process) }
        guard let config = dlsym(process, "openblas_get_config") else { return "unknown (not OpenBLAS)" }
        let getConfig = unsafeBitCast(config, to: (@convention(c) () -> UnsafePointer<CChar>?).self)
        var text = getConfig().map { String(cString: $0).trimmingCharacters(in: .whitespaces) } ?? "unknown"
        if let threads = dlsym(process, "openblas_get_num_threads") {
            let getThreads = unsafeBitCast(threads, to: (@convention(c) () -> Int32).self)
            text += ", \(getThreads()) threads"
        }
        return text
    }
}
