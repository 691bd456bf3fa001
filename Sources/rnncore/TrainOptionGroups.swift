// The option groups of `rnncore train`, one per part of the settings record (TrainingSettings). Every default is
// read from the record, and every range check is the record's own (reported under the option's name), so the
// command line and the library cannot disagree.

import ArgumentParser
import Foundation
import RNNCore

/// The model's architecture: `ModelSettings`.
struct ModelOptions: ParsableArguments {
    private static let defaults = ModelSettings()

    @Option(parsing: .unconditional, help: "Embedding size D.") var embed: Int = defaults.embeddingSize
    @Option(help: "Token inputs: embedding (trained table of size --embed) or one-hot (size V; small vocabularies such as --level char).")
    var input: InputEncoding = defaults.input
    @Option(parsing: .unconditional, help: "Hidden size H.") var hidden: Int = defaults.hiddenSize
    @Option(help: ArgumentHelp("Recurrent cell: \(CellSpecification.helpList)."))
    var cell: CellKind = defaults.cell
    @Option(parsing: .unconditional, help: "Number of stacked recurrent layers.") var layers: Int = defaults.layers
    @Option(parsing: .unconditional, help: "Dropout probability on the embedding output, between layers and before the output layer (training only).")
    var dropout: Float = defaults.dropout
    @Flag(help: "Bidirectional layers (not for language models: the backward direction would see the next token).")
    var bidirectional = false
    @Option(help: "Output layer: full (softmax over all V words) or adaptive (a head over the most frequent words and tail clusters behind smaller projections; exact probabilities, far fewer FLOPs for large vocabularies).")
    var softmax: SoftmaxKind = defaults.softmax
    @Option(help: ArgumentHelp("Adaptive softmax cluster boundaries, comma-separated and increasing, below V (default: 20 % and 60 % of V, 2000,6000 for Penn Treebank).", valueName: "n,n,…"))
    var cutoffs: CutoffList?
    @Option(name: .customLong("div-value"), parsing: .unconditional, help: "Adaptive softmax: tail cluster i projects H to H / div^(i+1) units.")
    var divValue: Float = defaults.divValue
    @Flag(name: .customLong("tie-weights"), help: "Use the embedding table as the output weight (Press & Wolf 2017): needs --embed = --hidden and the full softmax.")
    var tieWeights = defaults.tiedWeights

    func validate() throws {
        if let problem = settings.firstProblem {
            throw ValidationError(optionName: ["embeddingSize": "--embed", "hiddenSize": "--hidden", "layers": "--layers",
                                               "dropout": "--dropout", "cutoffs": "--cutoffs", "divValue": "--div-value",
                                               "tiedWeights": "--tie-weights"], problem)
        }
        if bidirectional {
            throw ValidationError("""
                --bidirectional does not apply to language models: a reverse-time layer reads the very tokens the \
                model must predict. Bidirectional layers are available in the Swift API (RecurrentNetwork) for \
                tagging and classification.
                """)
        }
    }

    /// The architecture these options give.
    var settings: ModelSettings {
        ModelSettings(cell: cell, layers: layers, embeddingSize: embed, hiddenSize: hidden, dropout: dropout,
                      input: input, softmax: softmax, cutoffs: cutoffs?.values ?? [], divValue: divValue,
                      tiedWeights: tieWeights)
    }
}

extension SoftmaxKind: ExpressibleByArgument {}

/// `--cutoffs 2000,6000`: positive integers separated by commas.
struct CutoffList: ExpressibleByArgument {
    var values: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, values.count == parts.count else { return nil }
        self.values = values
    }
}

/// How the model is trained: `TrainingOptions`.
struct TrainingOptionsGroup: ParsableArguments {
    private static let defaults = TrainingOptions()

    @Option(parsing: .unconditional, help: "Batch size N (parallel streams).") var batch: Int = defaults.batchSize
    @Option(parsing: .unconditional, help: "Truncated-BPTT window T.") var bptt: Int = defaults.bptt
    @Option(name: .customLong("bptt-truncation"), parsing: .unconditional, help: "Backpropagate each output's error at most this many steps back inside a window of --bptt steps (0 = the whole window).")
    var bpttTruncation: Int = defaults.truncation
    @Option(parsing: .unconditional, help: ArgumentHelp("Epochs (default: \(TrainingSettings.defaultEpochs(builtInCorpus: false)) with --train, \(TrainingSettings.defaultEpochs(builtInCorpus: true)) on the built-in corpus)."))
    var epochs: Int?
    @Option(name: .customLong("lr-decay"), parsing: .unconditional, help: "Divide the learning rate by this after an epoch without validation improvement (1 = never).")
    var lrDecay: Float = defaults.learningRateDecay
    @Option(name: .customLong("lr-decay-start"), parsing: .unconditional, help: "From this epoch on, divide the learning rate by --lr-decay after every epoch, improved or not (Zaremba et al.'s schedule).")
    var lrDecayStart: Int?
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this (0 = no clipping).")
    var clip: Double = defaults.clipNorm ?? 0
    @Flag(help: "Also report the training accuracy (next token predicted as the most likely one) of every epoch.")
    var accuracy = defaults.measureAccuracy
    @Flag(name: .customLong("skip-nonfinite"), help: "Skip (and count) updates whose loss or gradient norm is NaN or infinite instead of stopping.")
    var skipNonFinite = defaults.skipNonFinite

    func validate() throws {
        if let problem = options.firstProblem {
            throw ValidationError(optionName: ["batchSize": "--batch", "bptt": "--bptt", "epochs": "--epochs",
                                               "truncation": "--bptt-truncation", "learningRateDecay": "--lr-decay",
                                               "learningRateDecayStart": "--lr-decay-start", "clipNorm": "--clip"], problem)
        }
    }

    /// The training options these give (the epochs left nil when not given, for the settings to resolve; the
    /// options the command line does not set at their defaults).
    var options: TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = batch
        options.bptt = bptt
        options.truncation = bpttTruncation
        options.epochs = epochs
        options.learningRateDecay = lrDecay
        options.learningRateDecayStart = lrDecayStart
        // --clip 0 is "no clipping", which the options spell nil (anything else, negative or NaN included, goes to
        // the record, whose check refuses it).
        options.clipNorm = clip == 0 ? nil : clip
        options.measureAccuracy = accuracy
        options.skipNonFinite = skipNonFinite
        return options
    }
}

/// The optimizer: `OptimizerSettings` (its Adam hyper-parameters at the record's defaults).
struct OptimizerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Optimizer: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: " or ")).", valueName: "optimizer"))
    var optimizer: OptimizerKind = OptimizerSettings().kind
    @Option(parsing: .unconditional, help: ArgumentHelp("Learning rate (default: \(OptimizerKind.allCases.map { "\(OptimizerSettings.defaultLearningRate(for: $0)) for \($0.rawValue)" }.joined(separator: ", ")))."))
    var lr: Float?

    func validate() throws {
        if let problem = settings.firstProblem { throw ValidationError(optionName: ["learningRate": "--lr"], problem) }
    }

    /// The optimizer settings these give (the learning rate left nil when not given, for the settings to resolve).
    var settings: OptimizerSettings {
        var settings = OptimizerSettings()
        settings.kind = optimizer
        settings.learningRate = lr
        return settings
    }
}

extension OptimizerKind: ExpressibleByArgument {}

extension ValidationError {
    /// The record's complaint about a field, under the option that sets it: "--embed must be at least 1, got 0".
    init(optionName: [String: String], _ problem: SettingsProblem) {
        self.init("\(optionName[problem.field] ?? problem.field) \(problem.reason)")
    }
}
