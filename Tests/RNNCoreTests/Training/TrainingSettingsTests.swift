// The settings record: its JSON round-trips exactly with stable keys, its defaults are the single source of the
// run's defaults (Adam's included), context-dependent defaults are resolved in one place, and hostile JSON is
// refused with a message naming the field.

import Foundation
@testable import RNNCore
import Testing

@Suite("Training: the settings record")
struct TrainingSettingsTests {
    /// Settings with every field away from its default, and numbers a careless encoding would not keep exactly.
    static let custom = TrainingSettings(
        model: ModelSettings(cell: .lstm, layers: 3, embeddingSize: 7, hiddenSize: 9, dropout: 0.3, input: .oneHot),
        training: {
            var t = TrainingOptions()
            (t.batchSize, t.bptt, t.epochs, t.clipNorm) = (3, 11, 6, nil)
            (t.learningRateDecay, t.learningRateDecayStart, t.restoreBest) = (1.2, 4, false)
            (t.evaluationBatchSize, t.measureAccuracy, t.skipNonFinite, t.progressInterval, t.truncation) = (5, true, true, 7, 2)
            return t
        }(),
        optimizer: OptimizerSettings(kind: .sgd, learningRate: 0.1, beta1: 0.85, beta2: 0.9999, epsilon: 3e-7,
                                     weightDecay: 1e-5),
        seed: .max, level: .character, recipe: "small")

    static func encode(_ settings: TrainingSettings) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(settings)
    }

    @Test("Settings round-trip through JSON exactly, with every key written", arguments: [
        TrainingSettings(), TrainingSettings().resolved(builtInCorpus: true), custom,
    ])
    func jsonRoundTrip(_ settings: TrainingSettings) throws {
        let data = try Self.encode(settings)
        let decoded = try JSONDecoder().decode(TrainingSettings.self, from: data)
        #expect(decoded == settings)
        #expect(try Self.encode(decoded) == data, "the text is stable")
        // The seed (a 64-bit word) survives exactly.
        #expect(decoded.seed == settings.seed)
    }

    @Test("A model record of release 0.2 (before the output-layer keys) decodes as the full, untied softmax")
    func releaseTwoModelRecord() throws {
        let old = #"{"cell":"lstm","layers":2,"embeddingSize":8,"hiddenSize":8,"dropout":0.5,"input":"embedding"}"#
        let model = try JSONDecoder().decode(ModelSettings.self, from: Data(old.utf8))
        #expect(model == ModelSettings(cell: .lstm, layers: 2, embeddingSize: 8, hiddenSize: 8, dropout: 0.5))
        #expect(model.softmax == .full && model.cutoffs.isEmpty && !model.tiedWeights)
        let bad = #"{"cell":"lstm","layers":2,"embeddingSize":8,"hiddenSize":8,"dropout":0.5,"input":"embedding","softmax":"hierarchical"}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ModelSettings.self, from: Data(bad.utf8)) }
    }

    @Test("The JSON keys are explicit and stable; absent optionals are written as null")
    func jsonKeys() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Self.encode(TrainingSettings())) as? [String: Any])
        #expect(object.keys.sorted() == ["level", "model", "optimizer", "recipe", "seed", "training"])
        #expect((object["model"] as? [String: Any])?.keys.sorted()
                == ["cell", "cutoffs", "divValue", "dropout", "embeddingSize", "hiddenSize", "input", "layers", "softmax",
                    "tiedWeights"])
        #expect((object["optimizer"] as? [String: Any])?.keys.sorted()
                == ["beta1", "beta2", "epsilon", "kind", "learningRate", "weightDecay"])
        #expect((object["training"] as? [String: Any])?.keys.sorted()
                == ["batchSize", "bptt", "clipNorm", "epochs", "evaluationBatchSize", "learningRateDecay",
                    "learningRateDecayStart", "measureAccuracy", "progressInterval", "restoreBest", "skipNonFinite",
                    "truncation"])
        #expect(object["recipe"] is NSNull)
        #expect((object["training"] as? [String: Any])?["epochs"] is NSNull)
    }

    @Test("Context-dependent defaults are resolved by one function, and given values are kept")
    func resolution() {
        let defaults = TrainingSettings()
        #expect(!defaults.isResolved && defaults.training.epochs == nil && defaults.optimizer.learningRate == nil)
        #expect(defaults.resolved(builtInCorpus: true).training.epochs == 10)
        #expect(defaults.resolved(builtInCorpus: false).training.epochs == 4)
        #expect(defaults.resolved().optimizer.learningRate == 0.003 && defaults.resolved().isResolved)
        var sgd = defaults
        sgd.optimizer.kind = .sgd
        #expect(sgd.resolved().optimizer.learningRate == 1)
        #expect(Self.custom.resolved(builtInCorpus: true) == Self.custom, "nothing to resolve")
        // The defaults users of `rnncore train` had: N 20, T 35, clip 0.25, halve the rate on a plateau.
        #expect(defaults.training.batchSize == 20 && defaults.training.bptt == 35 && defaults.training.clipNorm == 0.25)
        #expect(defaults.training.learningRateDecay == 2 && defaults.optimizer.kind == .adam && defaults.seed == 1)
    }

    @Test("Adam's and the record's defaults are the same; makeOptimizer builds what the settings say")
    func optimizerDefaults() throws {
        let adam = Adam()
        let defaults = OptimizerSettings()
        #expect(adam.learningRate == OptimizerSettings.defaultLearningRate(for: .adam))
        #expect(adam.beta1 == defaults.beta1 && adam.beta2 == defaults.beta2 && adam.epsilon == defaults.epsilon
                && adam.weightDecay == defaults.weightDecay)
        #expect(OptimizerSettings(describing: adam) == defaults.resolvedSettings)
        let made = try #require(OptimizerSettings(kind: .adam, learningRate: 0.5, beta1: 0.7, epsilon: 1e-6).makeOptimizer() as? Adam)
        #expect(made.learningRate == 0.5 && made.beta1 == 0.7 && made.beta2 == defaults.beta2 && made.epsilon == 1e-6)
        let sgd = try #require(OptimizerSettings(kind: .sgd).makeOptimizer() as? SGD)
        #expect(sgd.learningRate == 1)
    }

    @Test("Model settings give the configuration, and back")
    func modelConfiguration() {
        let model = Self.custom.model
        let configuration = model.configuration(vocabularySize: 30)
        #expect(configuration == RNNLanguageModel.Configuration(vocabularySize: 30, embeddingSize: 7, hiddenSize: 9,
                                                                layers: 3, cell: .lstm, dropout: 0.3, input: .oneHot))
        var expected = model
        expected.embeddingSize = 30  // one-hot inputs have D = V
        #expect(ModelSettings(configuration) == expected)
    }

    /// Hostile settings JSON and the words its error must hold.
    static let hostile: [(edit: @Sendable (inout [String: Any]) -> Void, words: [String])] = [
        ({ s in Self.edit(&s, "model") { $0["cell"] = "transformer" } }, ["cell \"transformer\" is not one of rnn, rnn-relu, lstm, gru", "model.cell"]),
        ({ s in Self.edit(&s, "model") { $0["hiddenSize"] = -4 } }, ["hiddenSize must be at least 1, got -4", "model.hiddenSize"]),
        ({ s in Self.edit(&s, "model") { $0["dropout"] = 1.5 } }, ["dropout must lie in [0, 1)", "model.dropout"]),
        ({ s in Self.edit(&s, "training") { $0["truncation"] = -1 } }, ["truncation must be 0 (the whole window) or positive", "training.truncation"]),
        ({ s in Self.edit(&s, "training") { $0["learningRateDecay"] = 0.5 } }, ["learningRateDecay must be a finite number of at least 1", "training.learningRateDecay"]),
        ({ s in Self.edit(&s, "training") { $0["epochs"] = 0 } }, ["epochs must be at least 1, got 0", "training.epochs"]),
        ({ s in Self.edit(&s, "training") { $0["clipNorm"] = nil } }, ["\"clipNorm\" is missing", "training"]),
        ({ s in Self.edit(&s, "optimizer") { $0["kind"] = "rmsprop" } }, ["kind \"rmsprop\" is not one of sgd, adam", "optimizer.kind"]),
        ({ s in Self.edit(&s, "optimizer") { $0["epsilon"] = 0 } }, ["epsilon must be a positive finite number", "optimizer.epsilon"]),
        ({ s in Self.edit(&s, "optimizer") { $0["learningRate"] = -1 } }, ["learningRate must be a positive finite number", "optimizer.learningRate"]),
        ({ $0["level"] = "syllable" }, ["level \"syllable\" is not one of word, character"]),
        ({ $0["seed"] = -1 }, ["seed must be a whole number in 0...18446744073709551615"]),
        ({ $0["seed"] = nil }, ["\"seed\" is missing"]),
        ({ $0["model"] = nil }, ["\"model\" is missing"]),
    ]

    static func edit(_ settings: inout [String: Any], _ part: String, _ change: (inout [String: Any]) -> Void) {
        var object = settings[part] as! [String: Any]
        change(&object)
        settings[part] = object
    }

    @Test("Hostile settings JSON is refused with a readable message naming the field", arguments: hostile.indices)
    func hostileJSON(_ index: Int) throws {
        let (edit, words) = Self.hostile[index]
        var object = try #require(try JSONSerialization.jsonObject(with: Self.encode(Self.custom)) as? [String: Any])
        edit(&object)
        let data = try JSONSerialization.data(withJSONObject: object)
        let error = #expect(throws: DecodingError.self) { try JSONDecoder().decode(TrainingSettings.self, from: data) }
        let message = error.map { CheckpointError.explain($0) } ?? ""
        for word in words { #expect(message.contains(word), "\(message) should hold \(word)") }
        #expect(!message.contains("DecodingError") && !message.contains("CodingKeys"), "\(message)")
    }

    @Test("validate() names the first field out of range; a trainer refuses such settings")
    func validation() {
        var settings = TrainingSettings()
        settings.training.batchSize = 0
        #expect(throws: RNNCoreError.invalidArgument("training.batchSize must be at least 1, got 0")) { try settings.validate() }
        #expect(throws: RNNCoreError.invalidArgument("training.batchSize must be at least 1, got 0")) {
            try Trainer(settings: settings, vocabularySize: 5)
        }
        settings = TrainingSettings()
        settings.optimizer.beta1 = 1
        #expect(throws: RNNCoreError.invalidArgument("optimizer.beta1 must lie in [0, 1), got 1.0")) { try settings.validate() }
        settings = TrainingSettings()
        settings.model.layers = -2
        #expect(throws: RNNCoreError.invalidArgument("model.layers must be at least 1, got -2")) { try settings.validate() }
    }
}

extension OptimizerSettings {
    /// These settings with the learning rate resolved.
    fileprivate var resolvedSettings: OptimizerSettings {
        var settings = self
        settings.learningRate = resolvedLearningRate
        return settings
    }
}
