// Named, versioned training recipes: a complete settings record under a name (`ptb-rnn@1`), with the published
// result it aims at and the target it is tuned for. `rnncore recipes` lists them and `rnncore train --recipe NAME`
// starts from one; a recipe is data, nothing else: it never changes after release, a new tuning is a new version.

import Foundation

/// A named, versioned training recipe: a complete, resolved ``TrainingSettings`` record with the published
/// reference it aims at and the target (test perplexity within a wall-time budget) it is tuned for.
///
/// A recipe is a stored settings record and nothing else: training from it is training from its ``settings``, whose
/// ``TrainingSettings/recipe`` names it (`"ptb-rnn@1"`), so the name travels into training checkpoints and results.
/// Once released a version never changes; retuned settings are a new version.
public struct Recipe: Sendable, Equatable, Encodable {
    /// A published result: a test perplexity and where it comes from.
    public struct Reference: Sendable, Equatable, Encodable {
        /// The published test perplexity.
        public var testPerplexity: Double
        /// The model and the paper that reported it.
        public var source: String

        /// Creates a reference.
        public init(testPerplexity: Double, source: String) {
            self.testPerplexity = testPerplexity
            self.source = source
        }
    }

    /// What a run of the recipe should reach: at most this test perplexity within this wall time.
    public struct Target: Sendable, Equatable, Encodable {
        /// The test perplexity to reach or beat.
        public var testPerplexity: Double
        /// The wall-time budget of the whole run (training and evaluation), in minutes.
        public var minutes: Int
        /// The CPU cores the budget assumes.
        public var cores: Int

        /// Creates a target (on 2 cores unless told).
        public init(testPerplexity: Double, minutes: Int, cores: Int = 2) {
            self.testPerplexity = testPerplexity
            self.minutes = minutes
            self.cores = cores
        }
    }

    /// The name, lower case with dashes (`ptb-rnn`).
    public var name: String
    /// The version: 1 for the first release of the name, one more for every retuning.
    public var version: Int
    /// One line saying what the recipe trains.
    public var summary: String
    /// The published result the recipe aims at.
    public var reference: Reference
    /// The test perplexity and time budget the recipe is tuned for.
    public var target: Target
    /// A harder target the recipe may reach with more time; nil when there is none.
    public var stretchTarget: Target?
    /// The complete, resolved settings of a run, with ``TrainingSettings/recipe`` set to ``id``.
    public var settings: TrainingSettings

    /// Creates a recipe; `settings.recipe` is set to `name@version`.
    public init(name: String, version: Int, summary: String, reference: Reference, target: Target,
                stretchTarget: Target? = nil, settings: TrainingSettings) {
        self.name = name
        self.version = version
        self.summary = summary
        self.reference = reference
        self.target = target
        self.stretchTarget = stretchTarget
        self.settings = settings
        self.settings.recipe = "\(name)@\(version)"
    }

    /// `name@version` (`ptb-rnn@1`), as stored in ``TrainingSettings/recipe``.
    public var id: String { "\(name)@\(version)" }

    /// Every released recipe, each name's versions in increasing order.
    public static let all: [Recipe] = [ptbRNN, ptbLSTMSmall, ptbLSTMMediumTied]

    /// The recipe called `name`: `ptb-rnn` (its latest version) or `ptb-rnn@1` (that version); nil for an unknown
    /// name, an unknown version or a malformed one (`ptb-rnn@x`).
    public static func named(_ name: String) -> Recipe? {
        let parts = name.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let candidates = all.filter { $0.name == parts[0] }
        guard parts.count == 2 else { return candidates.max { $0.version < $1.version } }
        guard let version = Int(parts[1]) else { return nil }
        return candidates.first { $0.version == version }
    }

    /// Training options of a Penn Treebank recipe: N = 20 streams of T = 35 steps, gradients clipped to norm 0.25,
    /// the learning rate divided by `decay` after an epoch without validation improvement and after every epoch
    /// from `decayStart` on; the rest at the record's defaults.
    private static func ptbTraining(epochs: Int, decay: Float = 2, decayStart: Int) -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 20
        options.bptt = 35
        options.epochs = epochs
        options.clipNorm = 0.25
        options.learningRateDecay = decay
        options.learningRateDecayStart = decayStart
        return options
    }

    private static let ptbRNN = Recipe(
        name: "ptb-rnn", version: 1,
        summary: "Penn Treebank, word level: one tanh RNN layer of 300 with a tied 300-wide embedding, dropout 0.4, Adam",
        reference: Reference(testPerplexity: 124.7, source: "Mikolov's RNN LM (Mikolov et al. 2011)"),
        target: Target(testPerplexity: 124.7, minutes: 20),
        settings: TrainingSettings(
            model: ModelSettings(cell: .rnn, layers: 1, embeddingSize: 300, hiddenSize: 300, dropout: 0.4,
                                 softmax: .full, tiedWeights: true),
            training: ptbTraining(epochs: 6, decayStart: 3),
            optimizer: OptimizerSettings(kind: .adam, learningRate: 0.002),
            seed: 1, level: .word))

    private static let ptbLSTMSmall = Recipe(
        name: "ptb-lstm-small", version: 1,
        summary: "Penn Treebank, word level: two LSTM layers of 200, dropout 0.2, adaptive softmax (2000, 6000), Adam",
        reference: Reference(testPerplexity: 114.5,
                             source: "Zaremba et al. 2014, small non-regularised 2×200 LSTM"),
        target: Target(testPerplexity: 114.5, minutes: 15),
        settings: TrainingSettings(
            model: ModelSettings(cell: .lstm, layers: 2, embeddingSize: 200, hiddenSize: 200, dropout: 0.2,
                                 softmax: .adaptive, cutoffs: [2000, 6000], divValue: 4, tiedWeights: false),
            training: ptbTraining(epochs: 7, decayStart: 4),
            optimizer: OptimizerSettings(kind: .adam, learningRate: 0.003),
            seed: 1, level: .word))

    private static let ptbLSTMMediumTied = Recipe(
        name: "ptb-lstm-medium-tied", version: 1,
        summary: "Penn Treebank, word level: two LSTM layers of 650 with a tied embedding, dropout 0.5, Adam",
        reference: Reference(testPerplexity: 82.7,
                             source: "Zaremba et al. 2014, medium 2×650 LSTM with dropout"),
        target: Target(testPerplexity: 95, minutes: 90),
        stretchTarget: Target(testPerplexity: 82.7, minutes: 120),
        settings: TrainingSettings(
            model: ModelSettings(cell: .lstm, layers: 2, embeddingSize: 650, hiddenSize: 650, dropout: 0.5,
                                 softmax: .full, tiedWeights: true),
            training: ptbTraining(epochs: 8, decayStart: 5),
            optimizer: OptimizerSettings(kind: .adam, learningRate: 0.002),
            seed: 1, level: .word))

    private enum CodingKeys: String, CodingKey {
        case id, name, version, summary, reference, target, stretchTarget, settings
    }

    /// Encodes every key, `id` (`name@version`) included and `null` for an absent stretch target.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(version, forKey: .version)
        try c.encode(summary, forKey: .summary)
        try c.encode(reference, forKey: .reference)
        try c.encode(target, forKey: .target)
        try c.encode(stretchTarget, forKey: .stretchTarget)
        try c.encode(settings, forKey: .settings)
    }
}
