// `rnncore recipes` and `rnncore train --recipe`: the list (text and JSON), a recipe's settings with the options
// given on the command line written over their fields only, the recipe's name in the log, --json and the training
// checkpoint, and the refusals (unknown names and versions, --recipe with --resume, a recipe's value made invalid
// by an override).

import Foundation
import RNNCore
import Testing

@Suite("Tool: named recipes")
struct RecipeToolTests {
    /// A model small enough for a run of a second on the fixture text, whatever the recipe (D = H keeps tied
    /// weights possible).
    static let tiny = ["--embed", "8", "--hidden", "8"]

    @Test("rnncore recipes --json prints every recipe with its full settings record")
    func listJSON() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let result = try ToolTestRunner.run(tool, ["recipes", "--json"], in: scratch.url)
        try #require(result.exited && result.status == 0, "\(result)")
        let object = try #require(ToolTestFixture.jsonObject(result))
        let recipes = try #require(object["recipes"] as? [[String: Any]])
        #expect(recipes.compactMap { $0["id"] as? String } == Recipe.all.map(\.id))
        for (listed, recipe) in zip(recipes, Recipe.all) {
            let settings = try JSONDecoder().decode(
                TrainingSettings.self, from: JSONSerialization.data(withJSONObject: try #require(listed["settings"])))
            #expect(settings == recipe.settings)
            #expect((listed["reference"] as? [String: Any])?["testPerplexity"] as? Double == recipe.reference.testPerplexity)
            #expect((listed["target"] as? [String: Any])?["minutes"] as? Int == recipe.target.minutes)
        }
    }

    @Test("rnncore recipes lists each recipe with its reference, its target and the command that runs it")
    func listText() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let result = try ToolTestRunner.run(tool, ["recipes"], in: scratch.url)
        try #require(result.exited && result.status == 0, "\(result)")
        for recipe in Recipe.all {
            for words in [recipe.id, recipe.reference.source, "\(recipe.reference.testPerplexity)",
                          "within \(recipe.target.minutes) min",
                          "rnncore train --recipe \(recipe.name) --train ptb.train.txt --valid ptb.valid.txt --test ptb.test.txt"] {
                #expect(result.stdout.contains(words), "the list should hold \(words): \(result.stdout)")
            }
        }
    }

    @Test("The options given with --recipe override their fields and nothing else")
    func overrides() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let recipe = try #require(Recipe.named("ptb-rnn"))
        #expect(try TrainSettingsToolTests.printedSettings(tool, ["--recipe", "ptb-rnn"], in: scratch) == recipe.settings)
        #expect(try TrainSettingsToolTests.printedSettings(tool, ["--recipe", "ptb-rnn@1"], in: scratch) == recipe.settings)

        var expected = recipe.settings
        (expected.model.embeddingSize, expected.model.hiddenSize, expected.model.tiedWeights) = (8, 16, false)
        (expected.training.epochs, expected.training.measureAccuracy, expected.training.clipNorm) = (1, true, nil)
        (expected.seed, expected.level) = (7, .character)
        #expect(try TrainSettingsToolTests.printedSettings(tool, [
            "--recipe", "ptb-rnn", "--embed", "8", "--hidden", "16", "--no-tie-weights", "--epochs", "1", "--accuracy",
            "--clip", "0", "--seed", "7", "--level", "char",
        ], in: scratch) == expected)

        // Another optimizer without --lr takes that optimizer's default rate, not the recipe's (tuned for Adam).
        let sgd = try TrainSettingsToolTests.printedSettings(tool, ["--recipe", "ptb-rnn", "--optimizer", "sgd"], in: scratch)
        #expect(sgd.optimizer.kind == .sgd && sgd.optimizer.learningRate == OptimizerSettings.defaultLearningRate(for: .sgd))
        // --softmax full drops the recipe's adaptive cutoffs, which no other option could clear.
        let full = try TrainSettingsToolTests.printedSettings(tool, ["--recipe", "ptb-lstm-small", "--softmax", "full"], in: scratch)
        #expect(full.model.softmax == .full && full.model.cutoffs.isEmpty && full.model.hiddenSize == 200)
        // Without --recipe the flags mean what they always meant.
        let tied = try TrainSettingsToolTests.printedSettings(tool, ["--tie-weights", "--skip-nonfinite"] + Self.tiny, in: scratch)
        #expect(tied.model.tiedWeights && tied.training.skipNonFinite && tied.recipe == nil)
    }

    @Test("train --recipe trains with the recipe's settings and its overrides; --json, the log line and the checkpoint name the recipe")
    func trainsAndRecords() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let (train, valid, test) = try ToolTestFixture.writeWordSplits(in: scratch)
        let run = try ToolTestRunner.run(
            tool, ["train", "--recipe", "ptb-lstm-medium-tied", "--train", train, "--valid", valid, "--test", test, "--epochs", "1",
                   "--batch", "4", "--bptt", "5", "--checkpoint-every", "20", "--checkpoint", "r.safetensors", "--json"]
                + Self.tiny,
            in: scratch.url)
        try #require(run.exited && run.status == 0, "\(run)")
        #expect(run.stderr.contains("recipe ptb-lstm-medium-tied@1"), "the model line names the recipe: \(run.stderr)")
        let metrics = try #require(ToolTestFixture.jsonObject(run))
        #expect(metrics["recipe"] as? String == "ptb-lstm-medium-tied@1")
        let reported = try JSONDecoder().decode(
            TrainingSettings.self, from: JSONSerialization.data(withJSONObject: try #require(metrics["settings"])))
        var expected = try #require(Recipe.named("ptb-lstm-medium-tied")).settings
        (expected.model.embeddingSize, expected.model.hiddenSize) = (8, 8)
        (expected.training.epochs, expected.training.batchSize, expected.training.bptt) = (1, 4, 5)
        #expect(reported == expected)
        // The training checkpoint stores the same record, recipe included, and --resume restores it.
        let checkpoint = try TrainingCheckpoint.load(from: scratch.url.appendingPathComponent("r.safetensors"))
        #expect(checkpoint.settings == expected)
        #expect(try TrainSettingsToolTests.printedSettings(tool, ["--resume", "r.safetensors"], in: scratch) == expected)
    }

    @Test("--recipe with --resume is refused: the checkpoint holds its own settings")
    func refusedWithResume() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let result = try ToolTestRunner.run(tool, ["train", "--recipe", "ptb-rnn", "--resume", "r.safetensors"], in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        #expect(result.stderr.contains("--recipe cannot be given with --resume"), "\(result)")
    }

    @Test("An unknown recipe, or an unknown version, is refused with the known recipes", arguments: [
        ("nope", "is not a known recipe"), ("ptb-rnn@2", "has no such version"),
    ])
    func unknownRecipe(_ name: String, _ words: String) throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        let result = try ToolTestRunner.run(tool, ["train", "--recipe", name], in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        #expect(result.stderr.contains(words), "\(result)")
        let known = name.hasPrefix("ptb-rnn") ? ["ptb-rnn@1"] : Recipe.all.map(\.id)
        for id in known { #expect(result.stderr.contains(id), "the message lists \(id): \(result)") }
        #expect(!result.stdout.contains("epoch"), "nothing was trained: \(result)")
    }

    @Test("An override that leaves a recipe's value out of range is refused under that value's option, naming the recipe")
    func recipeValueMadeInvalid() throws {
        guard let tool = ToolTestRunner.requireExecutable() else { return }
        let scratch = try ToolTestScratchDirectory()
        // ptb-lstm-medium-tied ties the output weight to the embedding, which needs D = H: H alone cannot change.
        let result = try ToolTestRunner.run(tool, ["train", "--recipe", "ptb-lstm-medium-tied", "--hidden", "8"], in: scratch.url)
        #expect(result.exited && result.status == 64, "\(result)")
        for words in ["--tie-weights", "D 650, H 8", "recipe ptb-lstm-medium-tied@1"] {
            #expect(result.stderr.contains(words), "stderr should say \(words): \(result)")
        }
        // An option given is reported as before, without the recipe.
        let given = try ToolTestRunner.run(tool, ["train", "--recipe", "ptb-rnn", "--embed", "0"], in: scratch.url)
        #expect(given.exited && given.status == 64, "\(given)")
        #expect(given.stderr.contains("--embed must be at least 1, got 0") && !given.stderr.contains("set by recipe"), "\(given)")
    }
}
