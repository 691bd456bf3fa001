// The named training recipes: lookup by name or name@version (unknown ones refused), and every recipe a complete,
// valid, resolved settings record that names it and round-trips through JSON.

import Foundation
import RNNCore
import Testing

@Suite("Training: named recipes")
struct RecipeTests {
    @Test("A recipe is found by its name (the latest version) and by name@version")
    func lookup() throws {
        let recipe = try #require(Recipe.named("ptb-rnn"))
        #expect(recipe.name == "ptb-rnn" && recipe.version == 1 && recipe.id == "ptb-rnn@1")
        #expect(Recipe.named("ptb-rnn@1") == recipe)
        for recipe in Recipe.all {
            #expect(Recipe.named(recipe.id) == recipe)
            #expect(Recipe.named(recipe.name)?.name == recipe.name)
        }
    }

    @Test("Unknown names and versions, and malformed ones, find nothing",
          arguments: ["ptb", "PTB-RNN", "ptb-rnn@2", "ptb-rnn@0", "ptb-rnn@", "ptb-rnn@x", "ptb-rnn@1@1", "", "@1"])
    func unknown(_ name: String) {
        #expect(Recipe.named(name) == nil)
    }

    @Test("The three released recipes, with distinct names")
    func released() {
        #expect(Recipe.all.map(\.id) == ["ptb-rnn@1", "ptb-lstm-small@1", "ptb-lstm-medium-tied@1"])
        #expect(Set(Recipe.all.map(\.id)).count == Recipe.all.count)
    }

    @Test("Every recipe's settings are in range, resolved and name the recipe", arguments: Recipe.all)
    func valid(_ recipe: Recipe) throws {
        let settings = recipe.settings
        #expect(settings.model.firstProblem == nil)
        #expect(settings.training.firstProblem == nil)
        #expect(settings.optimizer.firstProblem == nil)
        try settings.validate()
        #expect(settings.isResolved, "a recipe fixes its epochs and learning rate")
        #expect(settings.resolved(builtInCorpus: true) == settings && settings.resolved(builtInCorpus: false) == settings)
        #expect(settings.recipe == recipe.id)
        #expect(recipe.target.testPerplexity > 0 && recipe.target.minutes > 0 && recipe.target.cores > 0)
        #expect(recipe.reference.testPerplexity > 0 && !recipe.reference.source.isEmpty && !recipe.summary.isEmpty)
    }

    @Test("Every recipe's settings round-trip through JSON exactly", arguments: Recipe.all)
    func jsonRoundTrip(_ recipe: Recipe) throws {
        let data = try JSONEncoder().encode(recipe.settings)
        #expect(try JSONDecoder().decode(TrainingSettings.self, from: data) == recipe.settings)
    }

    @Test("The recipes hold the settings they were released with")
    func releasedSettings() throws {
        let rnn = try #require(Recipe.named("ptb-rnn")).settings
        #expect(rnn.model == ModelSettings(cell: .rnn, layers: 1, embeddingSize: 300, hiddenSize: 300, dropout: 0.4,
                                           softmax: .full, tiedWeights: true))
        #expect(rnn.optimizer == OptimizerSettings(kind: .adam, learningRate: 0.002))
        #expect(rnn.training.epochs == 6 && rnn.training.batchSize == 20 && rnn.training.bptt == 35)
        #expect(rnn.training.clipNorm == 0.25 && rnn.training.learningRateDecay == 2
                && rnn.training.learningRateDecayStart == 3)
        #expect(rnn.seed == 1 && rnn.level == .word)

        let small = try #require(Recipe.named("ptb-lstm-small")).settings
        #expect(small.model == ModelSettings(cell: .lstm, layers: 2, embeddingSize: 200, hiddenSize: 200, dropout: 0.2,
                                             softmax: .adaptive, cutoffs: [2000, 6000], divValue: 4, tiedWeights: false))
        #expect(small.optimizer.learningRate == 0.003 && small.training.epochs == 7
                && small.training.learningRateDecayStart == 4)

        let medium = try #require(Recipe.named("ptb-lstm-medium-tied"))
        #expect(medium.settings.model == ModelSettings(cell: .lstm, layers: 2, embeddingSize: 650, hiddenSize: 650,
                                                       dropout: 0.5, softmax: .full, tiedWeights: true))
        #expect(medium.settings.optimizer.learningRate == 0.002 && medium.settings.training.epochs == 8
                && medium.settings.training.learningRateDecayStart == 5)
        #expect(medium.reference.testPerplexity == 82.7 && medium.target.testPerplexity == 95)
        #expect(medium.stretchTarget?.testPerplexity == 82.7)
    }

    @Test("A recipe encodes its id, reference, targets and full settings")
    func recipeJSON() throws {
        let recipe = try #require(Recipe.named("ptb-rnn"))
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(recipe)) as? [String: Any])
        #expect(object["id"] as? String == "ptb-rnn@1")
        #expect((object["reference"] as? [String: Any])?["testPerplexity"] as? Double == 124.7)
        #expect(object["stretchTarget"] is NSNull)
        let settings = try JSONSerialization.data(withJSONObject: try #require(object["settings"]))
        #expect(try JSONDecoder().decode(TrainingSettings.self, from: settings) == recipe.settings)
    }
}

extension Recipe: CustomTestStringConvertible {
    public var testDescription: String { id }
}
