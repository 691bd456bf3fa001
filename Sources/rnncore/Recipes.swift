// `rnncore recipes`: the named training recipes, each with its published reference, its target and the command
// that runs it; `--json` prints them with their full settings records.

import ArgumentParser
import Foundation
import RNNCore

struct Recipes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the named training recipes, their published references and how to run them.",
        discussion: """
        A recipe is a complete, versioned settings record: rnncore train --recipe NAME trains with it, and every \
        option given with --recipe overrides its own setting. The recipe's name (NAME@VERSION) and the final \
        settings go into the training checkpoint and into train --json.
        """)

    @Flag(help: "Print the recipes, with their full settings records, as one JSON object on standard output.")
    var json = false

    func run() throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let object = try JSONSerialization.jsonObject(with: encoder.encode(Recipe.all))
            print(try JSONOutput.line(["recipes": object]))
            return
        }
        print("""
            Run in the folder holding ptb.train.txt, ptb.valid.txt and ptb.test.txt (rnncore download ptb puts \
            them in ~/.cache/rnncore/ptb), or give their paths.
            """)
        for recipe in Recipe.all {
            print("")
            print("\(recipe.id)  \(recipe.summary)")
            print("  reference: test perplexity \(recipe.reference.testPerplexity), \(recipe.reference.source)")
            print("  target:    \(Self.describe(recipe.target))"
                  + (recipe.stretchTarget.map { "; stretch: \(Self.describe($0))" } ?? ""))
            print("  settings:  \(Self.describe(recipe.settings))")
            print("  run:       \(Self.command(recipe))")
        }
    }

    /// "test perplexity ≤ 124.7 within 20 min on 2 cores".
    static func describe(_ target: Recipe.Target) -> String {
        "test perplexity ≤ \(target.testPerplexity) within \(target.minutes) min on \(target.cores) cores"
    }

    /// The settings in a line: "lstm 2×200, D=200, dropout 0.2, adaptive softmax 2000,6000 (div 4); N=20 T=35, …".
    static func describe(_ settings: TrainingSettings) -> String {
        let (m, t, o) = (settings.model, settings.training, settings.optimizer)
        let output = m.softmax == .adaptive
            ? "adaptive softmax \(m.cutoffs.isEmpty ? "default cutoffs" : m.cutoffs.map(String.init).joined(separator: ",")) (div \(m.divValue))"
            : "full softmax" + (m.tiedWeights ? ", tied" : "")
        return "\(m.cell.rawValue) \(m.layers)×\(m.hiddenSize), \(m.input == .oneHot ? "one-hot" : "D=\(m.embeddingSize)")"
            + (m.dropout > 0 ? ", dropout \(m.dropout)" : "") + ", \(output); "
            + "N=\(t.batchSize) T=\(t.bptt), \(t.resolvedEpochs) epochs, clip \(t.clipNorm ?? 0), lr-decay \(t.learningRateDecay)"
            + (t.learningRateDecayStart.map { " from epoch \($0)" } ?? "") + "; "
            + "\(o.kind.rawValue) lr \(o.resolvedLearningRate); seed \(settings.seed), \(settings.level == .word ? "word" : "char") level"
    }

    /// The command line that trains `recipe` on Penn Treebank's three files in the current folder.
    static func command(_ recipe: Recipe) -> String {
        "rnncore train --recipe \(recipe.name) --train ptb.train.txt --valid ptb.valid.txt --test ptb.test.txt"
    }
}
