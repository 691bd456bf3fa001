import ArgumentParser
import Foundation
import RNNCore

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a standard corpus into a cache directory.",
        discussion: "ptb: the Penn Treebank language-modelling split of Mikolov et al. (ptb.train.txt, ptb.valid.txt, ptb.test.txt), checked against known SHA-256 sums.")

    enum Dataset: String, ExpressibleByArgument { case ptb }

    @Argument(help: "The corpus: ptb.") var dataset: Dataset
    @Option(help: "Where to put the files (default: ~/.cache/rnncore/ptb).") var dir: String?

    func run() throws {
        var ptb = PennTreebank()
        if let dir { ptb.cacheDirectory = URL(fileURLWithPath: dir) }
        let files = try ptb.download { event in writeError("\(event)\n") }
        print("train: \(files.train.path)\nvalid: \(files.valid.path)\ntest:  \(files.test.path)")
        print("train with: rnncore train --train \(files.train.path) --valid \(files.valid.path) --test \(files.test.path)")
    }
}
