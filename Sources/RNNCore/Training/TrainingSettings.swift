// The one settings record of a training run: model architecture, training options, optimizer, seed and token level,
// with every default defined here once. `rnncore train` fills it from its options, training checkpoints store it,
// and a resumed run (or a named recipe) is rebuilt from it.

import Foundation

/// Everything that defines a training run, apart from its texts: what a resumed run or a named recipe reproduces.
///
/// Every default of a run is defined here, once: `TrainingSettings()` is `rnncore train` without options. Two
/// defaults depend on the context and are left `nil` until ``resolved(builtInCorpus:)`` fills them: the number of
/// epochs (``defaultEpochs(builtInCorpus:)``) and the learning rate (``OptimizerSettings/defaultLearningRate(for:)``).
///
/// The JSON form has explicit, stable keys (`model`, `training`, `optimizer`, `seed`, `level`, `recipe`), every key
/// required (`null` for an absent optional), and decoding is strict: an unknown cell, optimizer or level, or a size
/// out of range, is a `DecodingError` whose message names the field.
public struct TrainingSettings: Codable, Sendable, Equatable {
    /// The model's architecture (everything but the vocabulary size, which the training text decides).
    public var model = ModelSettings()
    /// How the model is trained: batches, windows, epochs, clipping, learning-rate schedule, truncation.
    public var training = TrainingOptions()
    /// The optimizer and its hyper-parameters.
    public var optimizer = OptimizerSettings()
    /// The seed of the initial weights and dropout masks (and, in `rnncore train`, of the built-in corpus).
    public var seed: UInt64 = 1
    /// How texts are split into tokens.
    public var level: Vocabulary.Level = .word
    /// The name of the recipe these settings come from; nil for settings given one by one.
    public var recipe: String? = nil

    /// The default settings: `rnncore train` without options.
    public init() {}

    /// Creates settings from their parts.
    public init(model: ModelSettings = ModelSettings(), training: TrainingOptions = TrainingOptions(),
                optimizer: OptimizerSettings = OptimizerSettings(), seed: UInt64 = TrainingSettings().seed,
                level: Vocabulary.Level = TrainingSettings().level, recipe: String? = nil) {
        self.model = model
        self.training = training
        self.optimizer = optimizer
        self.seed = seed
        self.level = level
        self.recipe = recipe
    }

    /// The number of epochs when ``TrainingOptions/epochs`` is nil: 10 on the built-in corpus (small and quick),
    /// 4 on a text of one's own.
    public static func defaultEpochs(builtInCorpus: Bool) -> Int { builtInCorpus ? 10 : 4 }

    /// These settings with the context-dependent defaults filled in: the epochs for the corpus
    /// (``defaultEpochs(builtInCorpus:)``) and the learning rate for the optimizer
    /// (``OptimizerSettings/defaultLearningRate(for:)``). Values already set are kept.
    public func resolved(builtInCorpus: Bool = false) -> TrainingSettings {
        var settings = self
        settings.training.epochs = training.epochs ?? Self.defaultEpochs(builtInCorpus: builtInCorpus)
        settings.optimizer.learningRate = optimizer.resolvedLearningRate
        return settings
    }

    /// Whether the context-dependent defaults are filled in (as in every training checkpoint).
    public var isResolved: Bool { training.epochs != nil && optimizer.learningRate != nil }

    /// Throws unless every field is in range, naming the first that is not (`training.batchSize must be at least
    /// 1, got 0`). Decoding checks the same.
    public func validate() throws(RNNCoreError) {
        if let (key, problem) = model.problem { throw .invalidArgument("model.\(key.stringValue) \(problem)") }
        if let (key, problem) = training.problem { throw .invalidArgument("training.\(key.stringValue) \(problem)") }
        if let (key, problem) = optimizer.problem { throw .invalidArgument("optimizer.\(key.stringValue) \(problem)") }
    }

    private enum CodingKeys: String, CodingKey { case model, training, optimizer, seed, level, recipe }

    /// Decodes settings strictly: every key present, enums among their cases, numbers in range.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelSettings.self, forKey: .model)
        training = try c.decode(TrainingOptions.self, forKey: .training)
        optimizer = try c.decode(OptimizerSettings.self, forKey: .optimizer)
        // A 64-bit word: Foundation's own error for -1 or 1.5 says only that the data is not valid JSON.
        guard c.contains(.seed) else {
            throw DecodingError.keyNotFound(CodingKeys.seed, .init(codingPath: c.codingPath, debugDescription: "no seed"))
        }
        do {
            seed = try c.decode(UInt64.self, forKey: .seed)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .seed, in: c,
                                                   debugDescription: "seed must be a whole number in 0...\(UInt64.max)")
        }
        level = try c.decodeCase(of: Vocabulary.Level.self, forKey: .level)
        recipe = try c.decode(String?.self, forKey: .recipe)
    }

    /// Encodes every key (`null` for an absent optional).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(training, forKey: .training)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(seed, forKey: .seed)
        try c.encode(level, forKey: .level)
        try c.encode(recipe, forKey: .recipe)
    }
}

/// A field of the settings record that is out of range: its coding key (`batchSize`) and why
/// (`must be at least 1, got 0`). The command line reports it under the option that sets the field.
public struct SettingsProblem: Sendable, Equatable, CustomStringConvertible {
    /// The field's coding key.
    public var field: String
    /// What is wrong, as the end of a sentence that starts with the field's name.
    public var reason: String

    /// "field reason".
    public var description: String { "\(field) \(reason)" }
}

/// A model's architecture without its vocabulary size: the part of ``RNNLanguageModel/Configuration`` that a run
/// chooses (the training text gives V).
public struct ModelSettings: Codable, Sendable, Equatable {
    /// The recurrent cell of every layer.
    public var cell: CellKind = .rnn
    /// L, the number of stacked recurrent layers.
    public var layers: Int = 1
    /// D, the size of a token embedding (ignored with one-hot inputs, whose size is V).
    public var embeddingSize: Int = 100
    /// H, the size of each hidden state.
    public var hiddenSize: Int = 100
    /// The dropout probability on the embedding output, between layers and before the output layer (training only).
    public var dropout: Float = 0
    /// How tokens enter the first recurrent layer.
    public var input: InputEncoding = .embedding
    /// The output layer: the full softmax, or an adaptive softmax.
    public var softmax: SoftmaxKind = .full
    /// The adaptive softmax's cutoffs; empty for ``RNNLanguageModel/Configuration/defaultCutoffs(vocabularySize:)``
    /// (and for the full softmax).
    public var cutoffs: [Int] = []
    /// The adaptive softmax's projection divisor.
    public var divValue: Float = 4
    /// Whether the output weight is tied to the embedding (full softmax, D = H).
    public var tiedWeights: Bool = false

    /// The default architecture: one tanh RNN layer, D = H = 100, no dropout, a trained embedding, the full
    /// softmax, untied.
    public init() {}

    /// Creates an architecture from its parts (the defaults are those of ``init()``).
    public init(cell: CellKind = ModelSettings().cell, layers: Int = ModelSettings().layers,
                embeddingSize: Int = ModelSettings().embeddingSize, hiddenSize: Int = ModelSettings().hiddenSize,
                dropout: Float = ModelSettings().dropout, input: InputEncoding = ModelSettings().input,
                softmax: SoftmaxKind = ModelSettings().softmax, cutoffs: [Int] = ModelSettings().cutoffs,
                divValue: Float = ModelSettings().divValue, tiedWeights: Bool = ModelSettings().tiedWeights) {
        self.cell = cell
        self.layers = layers
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.dropout = dropout
        self.input = input
        self.softmax = softmax
        self.cutoffs = cutoffs
        self.divValue = divValue
        self.tiedWeights = tiedWeights
    }

    /// The architecture of `configuration` (its vocabulary size left out).
    public init(_ configuration: RNNLanguageModel.Configuration) {
        self.init(cell: configuration.cell, layers: configuration.layers, embeddingSize: configuration.embeddingSize,
                  hiddenSize: configuration.hiddenSize, dropout: configuration.dropout, input: configuration.input,
                  softmax: configuration.softmax, cutoffs: configuration.cutoffs, divValue: configuration.divValue,
                  tiedWeights: configuration.tiedWeights)
    }

    /// The model configuration of this architecture over a vocabulary of `vocabularySize` tokens.
    public func configuration(vocabularySize: Int) -> RNNLanguageModel.Configuration {
        RNNLanguageModel.Configuration(vocabularySize: vocabularySize, embeddingSize: embeddingSize,
                                       hiddenSize: hiddenSize, layers: layers, cell: cell, dropout: dropout,
                                       input: input, softmax: softmax,
                                       cutoffs: softmax == .adaptive && cutoffs.isEmpty
                                           ? RNNLanguageModel.Configuration.defaultCutoffs(vocabularySize: vocabularySize)
                                           : cutoffs,
                                       divValue: divValue, tiedWeights: tiedWeights)
    }

    enum CodingKeys: String, CodingKey {
        case cell, layers, embeddingSize, hiddenSize, dropout, input, softmax, cutoffs, divValue, tiedWeights
    }

    /// The first field out of range and why, or nil when every field is in range (decoding checks the same).
    public var firstProblem: SettingsProblem? { problem.map { SettingsProblem(field: $0.key.stringValue, reason: $0.reason) } }

    /// The first field out of range and why.
    var problem: (key: CodingKeys, reason: String)? {
        if embeddingSize < 1 { return (.embeddingSize, "must be at least 1, got \(embeddingSize)") }
        if hiddenSize < 1 { return (.hiddenSize, "must be at least 1, got \(hiddenSize)") }
        if layers < 1 { return (.layers, "must be at least 1, got \(layers)") }
        if !(dropout >= 0 && dropout < 1) { return (.dropout, "must lie in [0, 1), got \(dropout)") }
        if softmax == .full, !cutoffs.isEmpty { return (.cutoffs, "apply only to the adaptive softmax") }
        if let first = cutoffs.first, first < 1 || !zip(cutoffs, cutoffs.dropFirst()).allSatisfy({ $0 < $1 }) {
            return (.cutoffs, "must be positive and strictly increasing, got \(cutoffs.map(String.init).joined(separator: ","))")
        }
        if !(divValue >= 1 && divValue.isFinite) { return (.divValue, "must be a finite number of at least 1, got \(divValue)") }
        if tiedWeights, softmax != .full { return (.tiedWeights, "needs the full softmax (the adaptive softmax has no V × H output weight to share)") }
        if tiedWeights, input != .embedding || embeddingSize != hiddenSize {
            return (.tiedWeights, "needs a trained embedding with embedding size = hidden size, got \(input == .oneHot ? "one-hot inputs" : "D \(embeddingSize)"), H \(hiddenSize)")
        }
        return nil
    }

    /// Decodes an architecture strictly (every key, known cells and encodings, sizes of at least 1).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cell = try c.decodeCase(of: CellKind.self, forKey: .cell)
        layers = try c.decode(Int.self, forKey: .layers)
        embeddingSize = try c.decode(Int.self, forKey: .embeddingSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        dropout = try c.decode(Float.self, forKey: .dropout)
        input = try c.decodeCase(of: InputEncoding.self, forKey: .input)
        // Absent from the records of release 0.2 (before the output layers): their defaults.
        softmax = c.contains(.softmax) ? try c.decodeCase(of: SoftmaxKind.self, forKey: .softmax) : .full
        cutoffs = try c.decodeIfPresent([Int].self, forKey: .cutoffs) ?? []
        divValue = try c.decodeIfPresent(Float.self, forKey: .divValue) ?? 4
        tiedWeights = try c.decodeIfPresent(Bool.self, forKey: .tiedWeights) ?? false
        try c.require(problem)
    }

    /// Encodes every key.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cell, forKey: .cell)
        try c.encode(layers, forKey: .layers)
        try c.encode(embeddingSize, forKey: .embeddingSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(input, forKey: .input)
        try c.encode(softmax, forKey: .softmax)
        try c.encode(cutoffs, forKey: .cutoffs)
        try c.encode(divValue, forKey: .divValue)
        try c.encode(tiedWeights, forKey: .tiedWeights)
    }
}

/// The kind of optimizer a run uses.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// Plain stochastic gradient descent (``SGD``).
    case sgd
    /// Adam with bias correction, optionally with decoupled weight decay (``Adam``).
    case adam
}

/// The optimizer of a run and its hyper-parameters; the one place of their defaults (``Adam``'s initialiser takes
/// its defaults from here).
public struct OptimizerSettings: Codable, Sendable, Equatable {
    /// SGD or Adam.
    public var kind: OptimizerKind = .adam
    /// The initial learning rate; nil: ``defaultLearningRate(for:)`` of the kind.
    public var learningRate: Float? = nil
    /// Adam's exponential decay of the first moment.
    public var beta1: Float = 0.9
    /// Adam's exponential decay of the second moment.
    public var beta2: Float = 0.999
    /// Adam's term added to the denominator for stability.
    public var epsilon: Float = 1e-8
    /// Adam's decoupled weight decay (AdamW); 0 for plain Adam.
    public var weightDecay: Float = 0

    /// The default optimizer: Adam at its default learning rate.
    public init() {}

    /// Creates optimizer settings from their parts (the defaults are those of ``init()``).
    public init(kind: OptimizerKind = OptimizerSettings().kind, learningRate: Float? = nil,
                beta1: Float = OptimizerSettings().beta1, beta2: Float = OptimizerSettings().beta2,
                epsilon: Float = OptimizerSettings().epsilon, weightDecay: Float = OptimizerSettings().weightDecay) {
        self.kind = kind
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// The settings that describe `optimizer` as it is now (its current learning rate); nil for an optimizer other
    /// than ``SGD`` and ``Adam``.
    public init?(describing optimizer: any Optimizer) {
        switch optimizer {
        case let adam as Adam:
            self.init(kind: .adam, learningRate: adam.learningRate, beta1: adam.beta1, beta2: adam.beta2,
                      epsilon: adam.epsilon, weightDecay: adam.weightDecay)
        case let sgd as SGD:
            self.init(kind: .sgd, learningRate: sgd.learningRate)
        default:
            return nil
        }
    }

    /// The learning rate when none is given: 1 for SGD, 0.003 for Adam.
    public static func defaultLearningRate(for kind: OptimizerKind) -> Float {
        switch kind {
        case .sgd: 1
        case .adam: 0.003
        }
    }

    /// The learning rate, or the kind's default when none is set.
    public var resolvedLearningRate: Float { learningRate ?? Self.defaultLearningRate(for: kind) }

    /// A new optimizer of these settings, before its first step.
    public func makeOptimizer() -> any Optimizer {
        switch kind {
        case .sgd:
            SGD(learningRate: resolvedLearningRate)
        case .adam:
            Adam(learningRate: resolvedLearningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                 weightDecay: weightDecay)
        }
    }

    enum CodingKeys: String, CodingKey { case kind, learningRate, beta1, beta2, epsilon, weightDecay }

    /// The first field out of range and why, or nil when every field is in range (decoding checks the same).
    public var firstProblem: SettingsProblem? { problem.map { SettingsProblem(field: $0.key.stringValue, reason: $0.reason) } }

    /// The first field out of range and why.
    var problem: (key: CodingKeys, reason: String)? {
        if let rate = learningRate, !(rate > 0 && rate.isFinite) {
            return (.learningRate, "must be a positive finite number, got \(rate)")
        }
        if !(beta1 >= 0 && beta1 < 1) { return (.beta1, "must lie in [0, 1), got \(beta1)") }
        if !(beta2 >= 0 && beta2 < 1) { return (.beta2, "must lie in [0, 1), got \(beta2)") }
        if !(epsilon > 0 && epsilon.isFinite) { return (.epsilon, "must be a positive finite number, got \(epsilon)") }
        if !(weightDecay >= 0 && weightDecay.isFinite) {
            return (.weightDecay, "must be a finite number of at least 0, got \(weightDecay)")
        }
        return nil
    }

    /// Decodes optimizer settings strictly (every key, a known kind, hyper-parameters in range).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeCase(of: OptimizerKind.self, forKey: .kind)
        learningRate = try c.decode(Float?.self, forKey: .learningRate)
        beta1 = try c.decode(Float.self, forKey: .beta1)
        beta2 = try c.decode(Float.self, forKey: .beta2)
        epsilon = try c.decode(Float.self, forKey: .epsilon)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        try c.require(problem)
    }

    /// Encodes every key (`null` for a learning rate left to the default).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(beta1, forKey: .beta1)
        try c.encode(beta2, forKey: .beta2)
        try c.encode(epsilon, forKey: .epsilon)
        try c.encode(weightDecay, forKey: .weightDecay)
    }
}

extension TrainingOptions {
    enum CodingKeys: String, CodingKey {
        case batchSize, bptt, epochs, clipNorm, learningRateDecay, learningRateDecayStart, restoreBest
        case evaluationBatchSize, measureAccuracy, skipNonFinite, progressInterval, truncation
    }

    /// The first field out of range and why, or nil when every field is in range (decoding checks the same).
    public var firstProblem: SettingsProblem? { problem.map { SettingsProblem(field: $0.key.stringValue, reason: $0.reason) } }

    /// The first field out of range and why.
    var problem: (key: CodingKeys, reason: String)? {
        if batchSize < 1 { return (.batchSize, "must be at least 1, got \(batchSize)") }
        if bptt < 1 { return (.bptt, "must be at least 1, got \(bptt)") }
        if let epochs, epochs < 1 { return (.epochs, "must be at least 1, got \(epochs)") }
        if let clip = clipNorm, !(clip >= 0 && clip.isFinite) {
            return (.clipNorm, "must be a finite number, 0 (no clipping) or positive, got \(clip)")
        }
        if !(learningRateDecay >= 1 && learningRateDecay.isFinite) {
            return (.learningRateDecay, "must be a finite number of at least 1 (1 = never decay), got \(learningRateDecay)")
        }
        if let start = learningRateDecayStart, start < 1 {
            return (.learningRateDecayStart, "must be at least 1, got \(start)")
        }
        if evaluationBatchSize < 1 { return (.evaluationBatchSize, "must be at least 1, got \(evaluationBatchSize)") }
        if progressInterval < 1 { return (.progressInterval, "must be at least 1, got \(progressInterval)") }
        if truncation < 0 { return (.truncation, "must be 0 (the whole window) or positive, got \(truncation)") }
        return nil
    }

    /// Decodes training options strictly (every key, `null` for an absent optional, numbers in range).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        bptt = try c.decode(Int.self, forKey: .bptt)
        epochs = try c.decode(Int?.self, forKey: .epochs)
        clipNorm = try c.decode(Double?.self, forKey: .clipNorm)
        learningRateDecay = try c.decode(Float.self, forKey: .learningRateDecay)
        learningRateDecayStart = try c.decode(Int?.self, forKey: .learningRateDecayStart)
        restoreBest = try c.decode(Bool.self, forKey: .restoreBest)
        evaluationBatchSize = try c.decode(Int.self, forKey: .evaluationBatchSize)
        measureAccuracy = try c.decode(Bool.self, forKey: .measureAccuracy)
        skipNonFinite = try c.decode(Bool.self, forKey: .skipNonFinite)
        progressInterval = try c.decode(Int.self, forKey: .progressInterval)
        truncation = try c.decode(Int.self, forKey: .truncation)
        try c.require(problem)
    }

    /// Encodes every key (`null` for an absent optional).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(bptt, forKey: .bptt)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(clipNorm, forKey: .clipNorm)
        try c.encode(learningRateDecay, forKey: .learningRateDecay)
        try c.encode(learningRateDecayStart, forKey: .learningRateDecayStart)
        try c.encode(restoreBest, forKey: .restoreBest)
        try c.encode(evaluationBatchSize, forKey: .evaluationBatchSize)
        try c.encode(measureAccuracy, forKey: .measureAccuracy)
        try c.encode(skipNonFinite, forKey: .skipNonFinite)
        try c.encode(progressInterval, forKey: .progressInterval)
        try c.encode(truncation, forKey: .truncation)
    }
}

extension KeyedDecodingContainer {
    /// Decodes a string enum, refusing an unknown value with a message that lists the known ones.
    func decodeCase<E: RawRepresentable & CaseIterable>(of type: E.Type, forKey key: Key) throws -> E
    where E.RawValue == String {
        let raw = try decode(String.self, forKey: key)
        guard let value = E(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self,
                debugDescription: "\(key.stringValue) \"\(ErrorText.capped(raw, limit: 40))\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    /// Throws a `DecodingError` naming the field of `problem`, if any.
    func require(_ problem: (key: Key, reason: String)?) throws {
        if let (key, reason) = problem {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(key.stringValue) \(reason)")
        }
    }
}
