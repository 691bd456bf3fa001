// The option groups of `rnncore train`, one per part of the settings record (TrainingSettings). An option not given
// is nil and leaves its field of the base record (the defaults, or a recipe's) as it is; every default shown is read
// from the record, and every range check is the record's own, made on the result (reported under the option's
// name), so the command line and the library cannot disagree.

import ArgumentParser
import Foundation
import RNNCore

/// The model's architecture: `ModelSettings`. Every option is nil when not given, so that it overrides only its
/// own field of the run's base record (the defaults, or a recipe's).
struct ModelOptions: ParsableArguments {
    private static let defaults = ModelSettings()

    /// The option that sets each field, by the field's coding key.
    static let optionNames = ["cell": "--cell", "layers": "--layers", "embeddingSize": "--embed",
                              "hiddenSize": "--hidden", "dropout": "--dropout", "input": "--input",
                              "softmax": "--softmax", "cutoffs": "--cutoffs", "divValue": "--div-value",
                              "tiedWeights": "--tie-weights"]

    @Option(parsing: .unconditional, help: "Embedding size D (default: \(defaults.embeddingSize)).") var embed: Int?
    @Option(help: "Token inputs: embedding (trained table of size --embed) or one-hot (size V; small vocabularies such as --level char) (default: \(defaults.input.rawValue)).")
    var input: InputEncoding?
    @Option(parsing: .unconditional, help: "Hidden size H (default: \(defaults.hiddenSize)).") var hidden: Int?
    @Option(help: ArgumentHelp("Recurrent cell: \(CellSpecification.helpList) (default: \(defaults.cell.rawValue))."))
    var cell: CellKind?
    @Option(parsing: .unconditional, help: "Number of stacked recurrent layers (default: \(defaults.layers)).") var layers: Int?
    @Option(parsing: .unconditional, help: "Dropout probability on the embedding output, between layers and before the output layer (training only) (default: \(defaults.dropout)).")
    var dropout: Float?
    @Flag(help: "Bidirectional layers (not for language models: the backward direction would see the next token).")
    var bidirectional = false
    @Option(help: "Output layer: full (softmax over all V words) or adaptive (a head over the most frequent words and tail clusters behind smaller projections; exact probabilities, far fewer FLOPs for large vocabularies) (default: \(defaults.softmax.rawValue)).")
    var softmax: SoftmaxKind?
    @Option(help: ArgumentHelp("Adaptive softmax cluster boundaries, comma-separated and increasing, below V (default: 20 % and 60 % of V, 2000,6000 for Penn Treebank).", valueName: "n,n,…"))
    var cutoffs: CutoffList?
    @Option(name: .customLong("div-value"), parsing: .unconditional, help: "Adaptive softmax: tail cluster i projects H to H / div^(i+1) units (default: \(defaults.divValue)).")
    var divValue: Float?
    @Flag(name: .customLong("tie-weights"), inversion: .prefixedNo, help: "Use the embedding table as the output weight (Press & Wolf 2017): needs --embed = --hidden and the full softmax (default: \(defaults.tiedWeights ? "on" : "off")).")
    var tieWeights: Bool?

    func validate() throws {
        // The range checks are the settings record's, made by `rnncore train` on the record these options
        // override (a recipe's values count).
        if bidirectional {
            throw ValidationError("""
                --bidirectional does not apply to language models: a reverse-time layer reads the very tokens the \
                model must predict. Bidirectional layers are available in the Swift API (RecurrentNetwork) for \
                tagging and classification.
                """)
        }
    }

    /// Overwrites the fields of `settings` whose options were given, and only those. `--softmax full` without
    /// `--cutoffs` also clears the base record's cutoffs, which apply only to the adaptive softmax (and which no
    /// option can clear otherwise).
    func apply(to settings: inout ModelSettings) {
        if let cell { settings.cell = cell }
        if let layers { settings.layers = layers }
        if let embed { settings.embeddingSize = embed }
        if let hidden { settings.hiddenSize = hidden }
        if let dropout { settings.dropout = dropout }
        if let input { settings.input = input }
        if let softmax {
            settings.softmax = softmax
            if softmax == .full, cutoffs == nil { settings.cutoffs = [] }
        }
        if let cutoffs { settings.cutoffs = cutoffs.values }
        if let divValue { settings.divValue = divValue }
        if let tieWeights { settings.tiedWeights = tieWeights }
    }

    /// The coding keys of the fields whose options were given.
    var givenFields: Set<String> {
        let given: [(String, Any?)] = [("cell", cell), ("layers", layers), ("embeddingSize", embed),
                                       ("hiddenSize", hidden), ("dropout", dropout), ("input", input),
                                       ("softmax", softmax), ("cutoffs", cutoffs), ("divValue", divValue),
                                       ("tiedWeights", tieWeights)]
        return Set(given.filter { $0.1 != nil }.map(\.0))
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

/// How the model is trained: `TrainingOptions`. Every option is nil when not given (see ``ModelOptions``).
struct TrainingOptionsGroup: ParsableArguments {
    private static let defaults = TrainingOptions()

    /// The option that sets each field, by the field's coding key.
    static let optionNames = ["batchSize": "--batch", "bptt": "--bptt", "epochs": "--epochs",
                              "truncation": "--bptt-truncation", "learningRateDecay": "--lr-decay",
                              "learningRateDecayStart": "--lr-decay-start", "clipNorm": "--clip",
                              "measureAccuracy": "--accuracy", "skipNonFinite": "--skip-nonfinite"]

    @Option(parsing: .unconditional, help: "Batch size N (parallel streams) (default: \(defaults.batchSize)).") var batch: Int?
    @Option(parsing: .unconditional, help: "Truncated-BPTT window T (default: \(defaults.bptt)).") var bptt: Int?
    @Option(name: .customLong("bptt-truncation"), parsing: .unconditional, help: "Backpropagate each output's error at most this many steps back inside a window of --bptt steps (0 = the whole window) (default: \(defaults.truncation)).")
    var bpttTruncation: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("Epochs (default: \(TrainingSettings.defaultEpochs(builtInCorpus: false)) with --train, \(TrainingSettings.defaultEpochs(builtInCorpus: true)) on the built-in corpus)."))
    var epochs: Int?
    @Option(name: .customLong("lr-decay"), parsing: .unconditional, help: "Divide the learning rate by this after an epoch without validation improvement (1 = never) (default: \(defaults.learningRateDecay)).")
    var lrDecay: Float?
    @Option(name: .customLong("lr-decay-start"), parsing: .unconditional, help: "From this epoch on, divide the learning rate by --lr-decay after every epoch, improved or not (Zaremba et al.'s schedule).")
    var lrDecayStart: Int?
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this (0 = no clipping) (default: \(defaults.clipNorm ?? 0)).")
    var clip: Double?
    @Flag(inversion: .prefixedNo, help: "Also report the training accuracy (next token predicted as the most likely one) of every epoch (default: \(defaults.measureAccuracy ? "on" : "off")).")
    var accuracy: Bool?
    @Flag(name: .customLong("skip-nonfinite"), inversion: .prefixedNo, help: "Skip (and count) updates whose loss or gradient norm is NaN or infinite instead of stopping (default: \(defaults.skipNonFinite ? "on" : "off")).")
    var skipNonFinite: Bool?

    /// Overwrites the fields of `options` whose options were given, and only those (the epochs left as they are
    /// when not given, nil in the defaults, for the settings to resolve).
    func apply(to options: inout TrainingOptions) {
        if let batch { options.batchSize = batch }
        if let bptt { options.bptt = bptt }
        if let bpttTruncation { options.truncation = bpttTruncation }
        if let epochs { options.epochs = epochs }
        if let lrDecay { options.learningRateDecay = lrDecay }
        if let lrDecayStart { options.learningRateDecayStart = lrDecayStart }
        // --clip 0 is "no clipping", which the options spell nil (anything else, negative or NaN included, goes to
        // the record, whose check refuses it).
        if let clip { options.clipNorm = clip == 0 ? nil : clip }
        if let accuracy { options.measureAccuracy = accuracy }
        if let skipNonFinite { options.skipNonFinite = skipNonFinite }
    }

    /// The coding keys of the fields whose options were given.
    var givenFields: Set<String> {
        let given: [(String, Any?)] = [("batchSize", batch), ("bptt", bptt), ("truncation", bpttTruncation),
                                       ("epochs", epochs), ("learningRateDecay", lrDecay),
                                       ("learningRateDecayStart", lrDecayStart), ("clipNorm", clip),
                                       ("measureAccuracy", accuracy), ("skipNonFinite", skipNonFinite)]
        return Set(given.filter { $0.1 != nil }.map(\.0))
    }
}

/// The optimizer: `OptimizerSettings` (its Adam hyper-parameters those of the base record). Every option is nil
/// when not given (see ``ModelOptions``).
struct OptimizerOptions: ParsableArguments {
    /// The option that sets each field, by the field's coding key.
    static let optionNames = ["kind": "--optimizer", "learningRate": "--lr"]

    @Option(help: ArgumentHelp("Optimizer: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: " or ")) (default: \(OptimizerSettings().kind.rawValue)).", valueName: "optimizer"))
    var optimizer: OptimizerKind?
    @Option(parsing: .unconditional, help: ArgumentHelp("Learning rate (default: \(OptimizerKind.allCases.map { "\(OptimizerSettings.defaultLearningRate(for: $0)) for \($0.rawValue)" }.joined(separator: ", ")))."))
    var lr: Float?

    /// Overwrites the fields of `settings` whose options were given, and only those. An `--optimizer` of another
    /// kind than the base record's, without `--lr`, also drops the base record's learning rate (tuned for the
    /// other kind) for the new kind's default.
    func apply(to settings: inout OptimizerSettings) {
        if let optimizer {
            if optimizer != settings.kind, lr == nil { settings.learningRate = nil }
            settings.kind = optimizer
        }
        if let lr { settings.learningRate = lr }
    }

    /// The coding keys of the fields whose options were given.
    var givenFields: Set<String> {
        Set([("kind", optimizer as Any?), ("learningRate", lr)].filter { $0.1 != nil }.map(\.0))
    }
}

extension OptimizerKind: ExpressibleByArgument {}

extension ValidationError {
    /// The record's complaint about a field, under the option that sets it: "--embed must be at least 1, got 0".
    /// When the field's value is a recipe's (its option not given), the message says so.
    init(optionName: [String: String], _ problem: SettingsProblem, recipe: String? = nil,
         given: Set<String> = []) {
        let option = optionName[problem.field] ?? problem.field
        let origin = recipe.flatMap { given.contains(problem.field) ? nil : $0 }
            .map { " (set by recipe \($0); an option given on the command line overrides it)" } ?? ""
        self.init("\(option) \(problem.reason)\(origin)")
    }
}
