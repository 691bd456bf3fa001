import ArgumentParser
import Foundation
import RNNCore

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a standard corpus into a cache directory.",
        discussion: "ptb: the Penn Treebank language-modelling split of Mikolov et al. (ptb.train.txt, ptb.valid.txt, ptb.test.txt), checked against known SHA-256 sums. Without network, put the three files in the folder by hand (the error says where), or pass any folder's files to rnncore train with --train, --valid and --test.")

    enum Dataset: String, ExpressibleByArgument { case ptb }

    @Argument(help: "The corpus: ptb.") var dataset: Dataset
    @Option(help: "Where to put the files (default: ~/.cache/rnncore/ptb).") var dir: String?

    func run() throws {
        var ptb = PennTreebank()
        if let dir { ptb.cacheDirectory = URL(fileURLWithPath: dir) }
        let files: PennTreebank.Files
        do {
            files = try ptb.download { event in writeError("\(event)\n") }
        } catch {
            var message = ptb.failureMessage(for: error)
            switch error {
            case .networkFailure, .httpStatus, .checksumMismatch:
                message += "\nOr train on files in any folder: rnncore train --train DIR/ptb.train.txt --valid DIR/ptb.valid.txt --test DIR/ptb.test.txt"
            default:
                break
            }
            throw DownloadFailure(description: message)
        }
        print("train: \(files.train.path)\nvalid: \(files.valid.path)\ntest:  \(files.test.path)")
        print("train with: rnncore train --train \(files.train.path) --valid \(files.valid.path) --test \(files.test.path)")
    }
}

/// A failed download, explained in words (ArgumentParser prints the description after "Error: ").
struct DownloadFailure: Error, CustomStringConvertible {
    let description: String
}
