import ArgumentParser
import Foundation
@_spi(FaultInjection) import RNNCore

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a language model and report its perplexity.",
        discussion: """
        Without --train, trains on a built-in corpus: text drawn from a seeded stochastic grammar whose true \
        perplexity is known, so the run also shows how close the model came to the best possible result. \
        For Penn Treebank: rnncore download ptb, then pass --train/--valid/--test.

        --recipe NAME starts from a named, versioned recipe (rnncore recipes lists them): every setting is the \
        recipe's, and each option given with it overrides its own setting only. The recipe's name and the final \
        settings go into the training checkpoint and the --json output.
        """)

    @Option(help: "Training text (UTF-8). Omit to use the built-in corpus.", completion: .file()) var train: String?
    @Option(help: "Validation text, evaluated after every epoch.", completion: .file()) var valid: String?
    @Option(help: "Test text, evaluated once at the end.", completion: .file()) var test: String?
    @Option(help: ArgumentHelp("Start from this named recipe's settings (NAME or NAME@VERSION; rnncore recipes lists them); the options given with it override its values.", valueName: "name"))
    var recipe: String?
    @Option(help: "Tokens: word (whitespace-separated, line end = <eos>) or char (default: \(TrainingSettings().level == .word ? "word" : "char")).")
    var level: Vocabulary.Level?
    @OptionGroup(title: "Model") var modelOptions: ModelOptions
    @OptionGroup(title: "Training") var trainingOptions: TrainingOptionsGroup
    @OptionGroup(title: "Optimizer") var optimizerOptions: OptimizerOptions
    @Option(parsing: .unconditional, help: "Seed for initialisation (and the built-in corpus) (default: \(TrainingSettings().seed)).")
    var seed: UInt64?
    @Option(help: "Write the trained model to this safetensors file.", completion: .file()) var out: String?
    @Option(help: "Write an SVG chart of train/valid perplexity per epoch.", completion: .file()) var plot: String?
    @Flag(help: "Print one JSON object with the final metrics (and the run's settings) on standard output.")
    var json = false
    @Option(help: "Where training checkpoints (weights, optimizer, data position, random state: all a resumed run needs) go; default: next to --out as NAME.resume.safetensors, else rnncore-interrupted.safetensors.", completion: .file())
    var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Save a training checkpoint every N batches and at the end of every epoch (default 0: only on Ctrl-C).")
    var checkpointEvery: Int?
    @Option(help: "Continue the run saved in this training checkpoint (by --checkpoint-every or Ctrl-C); it ends bit for bit as if never stopped. Settings come from the checkpoint; --train/--valid/--test/--out/--plot/--checkpoint may be given again.", completion: .file())
    var resume: String?

    @Option(name: .customLong("max-memory"), parsing: .unconditional, help: "Refuse to start a run whose estimated memory (parameters, gradients, optimizer state, one window's activations) exceeds this many bytes (suffixes K, M, G, T; default: the memory this process can still allocate).")
    var maxMemory: ByteCount?
    @Flag(name: .customLong("print-settings"),
          help: ArgumentHelp("Print the run's settings record (resolved, or the checkpoint's with --resume) as JSON and exit without training.", visibility: .private))
    var printSettings = false
    @Option(name: .customLong("inject-nonfinite-loss-from-step"), parsing: .unconditional,
            help: ArgumentHelp("Testing aid: treat the loss of every batch from this step on as NaN.", visibility: .private))
    var injectNonFiniteLossFromStep: Int?

    func validate() throws {
        if let step = injectNonFiniteLossFromStep, step < 1 { throw ValidationError("--inject-nonfinite-loss-from-step must be at least 1") }
        if train == nil, valid != nil || test != nil { throw ValidationError("--valid and --test need --train") }
        if let recipe {
            if resume != nil {
                throw ValidationError("--recipe cannot be given with --resume: the resumed run's settings, its recipe included, come from the training checkpoint")
            }
            if Recipe.named(recipe) == nil { throw ValidationError(Self.unknownRecipeMessage(recipe)) }
        }
        try validateCheckpointOptions()
        // The record's own range checks, on the result of the options over the base record.
        let settings = self.settings
        let checks: [(SettingsProblem?, [String: String], Set<String>)] = [
            (settings.model.firstProblem, ModelOptions.optionNames, modelOptions.givenFields),
            (settings.training.firstProblem, TrainingOptionsGroup.optionNames, trainingOptions.givenFields),
            (settings.optimizer.firstProblem, OptimizerOptions.optionNames, optimizerOptions.givenFields),
        ]
        for case let (problem?, names, given) in checks {
            throw ValidationError(optionName: names, problem, recipe: recipe.flatMap(Recipe.named)?.id, given: given)
        }
    }

    /// Why `name` names no recipe, with the known ones.
    static func unknownRecipeMessage(_ name: String) -> String {
        let base = String(name.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let versions = Recipe.all.filter { $0.name == base }.map(\.id)
        let known = Recipe.all.map(\.id).joined(separator: ", ")
        if !versions.isEmpty {
            return "--recipe \(name): recipe \(base) has no such version (it has \(versions.joined(separator: ", ")))"
        }
        return "--recipe \"\(name.count > 60 ? name.prefix(60) + "…" : name)\" is not a known recipe; the recipes are \(known) (rnncore recipes describes them)"
    }

    /// The settings record of a new run: the base record (`TrainingSettings()`, or the --recipe's) with every
    /// option given on the command line written over its field, the context-dependent defaults resolved for the
    /// corpus (the built-in one without --train). A recipe's record is complete, so only the options change it.
    var settings: TrainingSettings {
        var settings = recipe.flatMap(Recipe.named)?.settings ?? TrainingSettings()
        modelOptions.apply(to: &settings.model)
        trainingOptions.apply(to: &settings.training)
        optimizerOptions.apply(to: &settings.optimizer)
        if let seed { settings.seed = seed }
        if let level { settings.level = level }
        return settings.resolved(builtInCorpus: train == nil)
    }

    /// Trains the run of `settings` (``run()`` resolves --resume and checks `files` first).
    func execute(settings: TrainingSettings, resuming resumed: ResumePoint?, files: TrainFiles,
                 ranks: TrainRanks) throws {
        let wallStart = Date()
        let data = try loadData(settings: settings, resuming: resumed)
        // Rank 0 speaks for the run; the other ranks are silent unless they fail.
        let log: (String) -> Void = ranks.isLeader ? { json ? writeError($0 + "\n") : print($0) } : { _ in }
        log("data: \(data.description)")
        log("  vocabulary \(data.splits.vocabulary.count) \(settings.level == .word ? "words" : "characters"), "
            + "train \(data.splits.train.count) tokens, valid \(data.splits.valid.count), test \(data.splits.test.count)")

        let config = settings.model.configuration(vocabularySize: data.splits.vocabulary.count)
        try config.validate()
        try checkMemory(config, settings: settings)
        let trainer: Trainer
        if let resumed {
            trainer = try Trainer(resumingFrom: resumed.checkpoint)
        } else {
            trainer = try Trainer(settings: settings, vocabularySize: config.vocabularySize)
        }
        trainer.nonFiniteLossFromStep = injectNonFiniteLossFromStep
        trainer.communicator = ranks.communicator
        let (m, t, o) = (settings.model, settings.training, settings.optimizer)
        let clip = t.clipNorm ?? 0
        log("model: \(m.layers)-layer \(m.cell.specification.displayName), V=\(config.vocabularySize) \(m.input == .oneHot ? "one-hot inputs" : "D=\(m.embeddingSize)") H=\(m.hiddenSize)"
            + (m.dropout > 0 ? ", dropout \(m.dropout)" : "") + ", \(trainer.model.configuration.outputDescription), "
            + "\(trainer.model.parameters.scalarCount) parameters; \(o.kind.rawValue) lr=\(o.resolvedLearningRate), clip=\(clip), "
            + "N=\(t.batchSize) T=\(t.bptt)" + (t.truncation > 0 ? " (errors back at most \(t.truncation) steps)" : "")
            + ", \(trainer.epochCount) epochs, seed \(settings.seed)"
            + (settings.recipe.map { ", recipe \($0)" } ?? "")
            + (ranks.size > 1 ? "; \(ranks.size) ranks of \(t.batchSize / ranks.size) streams each" : ""))
        if let resumed { log("resumed from \(resumed.path): epoch \(trainer.epoch), after batch \(trainer.batch)") }
        var display = ProgressDisplay()
        log("")
        log("epoch  train ppl  valid ppl        lr   tokens/s    time")
        let reports = try runTraining(trainer, data: data, resumed: resumed, files: files, ranks: ranks,
                                      log: log) { event in
            guard ranks.isLeader else { return }
            switch event {
            case let .progress(p):
                display.show(
                    fraction: Double(p.batch) / Double(p.batchesPerEpoch),
                    label: "epoch \(p.epoch)/\(trainer.epochCount)",
                    detail: String(format: "ppl %.2f  %.0f tok/s  ETA %@", p.trainPerplexity, p.tokensPerSecond,
                                   formatDuration(p.remaining)))
            case let .epochEnded(r):
                display.finishLine()
                let valid = r.validPerplexity.map { String(format: "%.2f", $0) } ?? "-"
                log(String(format: "%5d  %9.2f  ", r.epoch, r.trainPerplexity) + valid.leftPadded(to: 9)
                    + String(format: "  %8.4g  %9.0f  ", r.learningRate, r.tokensPerSecond)
                    + formatDuration(r.seconds).leftPadded(to: 6)
                    + (r.trainAccuracy.map { String(format: "  accuracy %.2f%%", $0 * 100) } ?? "")
                    + (r.skippedUpdates > 0 ? "  (\(r.skippedUpdates) non-finite updates skipped)" : ""))
            }
        }

        let testPerplexity = data.splits.test.count >= 2
            ? try trainer.model.perplexity(on: data.splits.test.ids, communicator: ranks.communicator) : nil
        guard ranks.isLeader else { return }  // rank 0 alone writes files and results
        let best = reports.compactMap(\.validPerplexity).min()
        log("")
        if let best { log(String(format: "best valid perplexity: %.2f", best)) }
        if let testPerplexity { log(String(format: "test perplexity: %.2f", testPerplexity)) }
        if let truth = data.truePerplexity, let testPerplexity {
            log(String(format: "true perplexity of the source: %.2f — the model is within %.1f%% of it",
                       truth, (testPerplexity / truth - 1) * 100))
        }
        // The model first: nothing after it may cost it. A failed write saves it elsewhere and says where.
        var failures: [String] = []
        if let out = files.output("--out")?.path {
            do {
                try saveModel(trainer.model, vocabulary: data.splits.vocabulary, to: out,
                              checkpoint: files.output("--checkpoint")?.path ?? checkpointPath, log: log)
            } catch {
                failures.append("\(error)")
            }
        }
        if let plot {
            let svg = LearningCurvePlot.svg(
                reports, title: LearningCurvePlot.title(m, vocabularySize: config.vocabularySize),
                subtitle: "on \(data.description)",
                references: LearningCurvePlot.references(test: testPerplexity, truth: data.truePerplexity))
            do {
                try OutputFile.write(Array(svg.utf8), toPath: plot)
                log("learning curve written to \(plot)")
            } catch {
                failures.append("cannot write the learning curve: \(error)")
            }
        }
        let seconds = Date().timeIntervalSince(wallStart)
        log("wall time: \(formatDuration(seconds))")
        if json {
            let trainTokens = Double(reports.count) * Double(data.splits.train.count)
            let trainSeconds = reports.reduce(0) { $0 + Double(data.splits.train.count) / $1.tokensPerSecond }
            var result: [String: Any] = [
                "train_perplexity": reports.last?.trainPerplexity ?? .nan,
                "tokens_per_second": trainTokens / max(trainSeconds, 1e-9),
                "wall_seconds": seconds,
                "parameters": trainer.model.parameters.scalarCount,
                "epochs": reports.count,
                "skipped_updates": reports.reduce(0) { $0 + $1.skippedUpdates },
                "vocabulary_size": config.vocabularySize,
                "ranks": ranks.size,
                "communication_seconds": trainer.communicationSeconds,
                "settings": try JSONOutput.object(settings),
                "recipe": settings.recipe ?? NSNull(),
            ]
            if let best { result["valid_perplexity"] = best }
            if let testPerplexity { result["test_perplexity"] = testPerplexity }
            if let truth = data.truePerplexity { result["true_perplexity"] = truth }
            if let accuracy = reports.last?.trainAccuracy { result["train_accuracy"] = accuracy }
            if !failures.isEmpty { result["errors"] = failures }
            print(try JSONOutput.line(result))
        }
        if !failures.isEmpty { throw ValidationError(failures.joined(separator: "\n")) }
    }

    /// Refuses a configuration whose training would need more memory than `--max-memory` or than this process can
    /// still allocate, with the estimate, before anything large is allocated.
    private func checkMemory(_ config: RNNLanguageModel.Configuration, settings: TrainingSettings) throws {
        let t = settings.training
        let estimate = config.trainingMemoryEstimate(
            batchSize: t.batchSize, bptt: t.bptt, optimizerSlots: settings.optimizer.kind == .adam ? 2 : 0,
            evaluationBatchSize: t.evaluationBatchSize, truncation: t.truncation)
        let limit = maxMemory.map { (bytes: $0.bytes, source: "--max-memory") }
            ?? SystemMemory.available().map { (bytes: $0, source: "the memory this process can still allocate") }
        guard let limit, estimate.totalBytes > limit.bytes else { return }
        throw ValidationError("this run needs \(estimate), more than \(limit.source) (\(MemoryEstimate.format(limit.bytes))): "
                              + "lower --hidden, --embed, --layers, --batch or --bptt"
                              + (maxMemory == nil ? ", or free memory" : ", or raise --max-memory"))
    }

    /// Loads the texts at the settings' level (the built-in corpus from their seed without --train). When resuming,
    /// the training text is checked against the checkpoint before the others are encoded, so another training text
    /// is reported as such (not as unknown words of the validation text).
    private func loadData(settings: TrainingSettings, resuming resumed: ResumePoint?) throws -> TrainingData {
        guard let train else { return try TrainingData.builtIn(seed: settings.seed, level: settings.level) }
        let trainURL = URL(fileURLWithPath: train)
        // New runs number the vocabulary by training-set frequency (the adaptive softmax's head is the most frequent
        // ids); a resumed run keeps the checkpoint's numbering, whichever order it has (earlier releases numbered
        // by first appearance).
        var trainCorpus = try Corpus.load(contentsOf: trainURL, level: settings.level).orderedByFrequency()
        if let checkpoint = resumed?.checkpoint {
            if let renumbered = trainCorpus.renumbered(as: checkpoint.vocabulary) { trainCorpus = renumbered }
            let fingerprint = TokenFingerprint(trainCorpus.ids)
            guard trainCorpus.vocabulary == checkpoint.vocabulary, fingerprint == checkpoint.trainingData else {
                throw ValidationError("the training text is not the one this run was trained on: \(train) holds \(fingerprint), the run in \(resumed!.path) was trained on \(checkpoint.trainingData); give the original --train text")
            }
        }
        func encode(_ path: String?) throws -> Corpus {
            guard let path else { return try Corpus(ids: [], vocabulary: trainCorpus.vocabulary) }
            return try Corpus.load(contentsOf: URL(fileURLWithPath: path), vocabulary: trainCorpus.vocabulary)
        }
        let splits = Corpus.Splits(train: trainCorpus, valid: try encode(valid), test: try encode(test))
        return TrainingData(splits: splits, description: trainURL.lastPathComponent, truePerplexity: nil)
    }
}

/// The corpora of a run, with a label and, for the built-in source, its true perplexity.
struct TrainingData {
    var splits: Corpus.Splits
    var description: String
    var truePerplexity: Double?
}
