import ArgumentParser

/// The `rnncore` command-line tool: train, evaluate and sample RNN language models.
@main
struct RNNCoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnncore",
        abstract: "Train, evaluate and sample recurrent neural network language models on the CPU.",
        subcommands: [Train.self, Evaluate.self, Generate.self, Download.self, Bench.self]
    )
}
