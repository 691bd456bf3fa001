import ArgumentParser
import Foundation
import RNNCore

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a language model and report its perplexity.",
        discussion: """
        Without --train, trains on a built-in corpus: text drawn from a seeded stochastic grammar whose true \
        perplexity is known, so the run also shows how close the model came to the best possible result. \
        For Penn Treebank: rnncore download ptb, then pass --train/--valid/--test.
        """)

    @Option(help: "Training text (UTF-8). Omit to use the built-in corpus.") var train: String?
    @Option(help: "Validation text, evaluated after every epoch.") var valid: String?
    @Option(help: "Test text, evaluated once at the end.") var test: String?
    @Option(help: "Tokens: word (whitespace-separated, line end = <eos>) or char.") var level: Vocabulary.Level = .word
    @Option(help: "Embedding size D.") var embed: Int = 100
    @Option(help: "Token inputs: embedding (trained table of size --embed) or one-hot (size V; small vocabularies such as --level char).")
    var input: InputEncoding = .embedding
    @Option(help: "Hidden size H.") var hidden: Int = 100
    @Option(help: "Recurrent cell: rnn (tanh) or lstm.") var cell: CellKind = .rnn
    @Option(help: "Number of stacked recurrent layers.") var layers: Int = 1
    @Option(help: "Dropout probability on the embedding output, between layers and before the output layer (training only).")
    var dropout: Float = 0
    @Option(name: .customLong("bptt-truncation"), help: "Backpropagate each output's error at most this many steps back inside a window of --bptt steps (0 = the whole window).")
    var bpttTruncation: Int = 0
    @Flag(help: "Bidirectional layers (not for language models: the backward direction would see the next token).")
    var bidirectional = false
    @Option(help: "Batch size N (parallel streams).") var batch: Int = 20
    @Option(help: "Truncated-BPTT window T.") var bptt: Int = 35
    @Option(help: "Epochs (default: 4 with --train, 10 on the built-in corpus).") var epochs: Int?
    @Option(help: "Optimizer: sgd or adam.") var optimizer: OptimizerKind = .adam
    @Option(help: "Learning rate (default: 1 for sgd, 0.003 for adam).") var lr: Float?
    @Option(name: .customLong("lr-decay"), help: "Divide the learning rate by this after an epoch without validation improvement (1 = never).")
    var lrDecay: Float = 2
    @Option(name: .customLong("lr-decay-start"), help: "From this epoch on, divide the learning rate by --lr-decay after every epoch, improved or not (Zaremba et al.'s schedule).")
    var lrDecayStart: Int?
    @Option(help: "Clip the global gradient norm to this (0 = no clipping).") var clip: Double = 0.25
    @Option(help: "Seed for initialisation (and the built-in corpus).") var seed: UInt64 = 1
    @Option(help: "Write the trained model to this safetensors file.") var out: String?
    @Option(help: "Write an SVG chart of train/valid perplexity per epoch.") var plot: String?
    @Flag(help: "Also report the training accuracy (next token predicted as the most likely one) of every epoch.")
    var accuracy = false
    @Flag(name: .customLong("skip-nonfinite"), help: "Skip (and count) updates whose loss or gradient norm is NaN or infinite instead of stopping.")
    var skipNonFinite = false
    @Flag(help: "Print one JSON object with the final metrics on standard output.") var json = false
    @Option(help: "Where training checkpoints (weights, optimizer, data position, random state: all a resumed run needs) go; default: next to --out as NAME.resume.safetensors, else rnncore-interrupted.safetensors.")
    var checkpoint: String?
    @Option(name: .customLong("checkpoint-every"), help: "Save a training checkpoint every N batches and at the end of every epoch (default 0: only on Ctrl-C).")
    var checkpointEvery: Int?
    @Option(help: "Continue the run saved in this training checkpoint (by --checkpoint-every or Ctrl-C); it ends bit for bit as if never stopped. Settings come from the checkpoint; --train/--valid/--test/--out/--plot/--checkpoint may be given again.")
    var resume: String?

    enum OptimizerKind: String, ExpressibleByArgument { case sgd, adam }

    func validate() throws {
        for (name, value) in [("--embed", embed), ("--hidden", hidden), ("--layers", layers), ("--batch", batch), ("--bptt", bptt)]
        where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1") }
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must lie in [0, 1), got \(dropout)") }
        if bpttTruncation < 0 { throw ValidationError("--bptt-truncation must be 0 or positive") }
        if bidirectional {
            throw ValidationError("""
                --bidirectional does not apply to language models: a reverse-time layer reads the very tokens the \
                model must predict. Bidirectional layers are available in the Swift API (RecurrentNetwork) for \
                tagging and classification.
                """)
        }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
        if !(lrDecay >= 1) { throw ValidationError("--lr-decay must be at least 1") }
        if let lrDecayStart, lrDecayStart < 1 { throw ValidationError("--lr-decay-start must be at least 1") }
        if !(clip >= 0) { throw ValidationError("--clip must be 0 or positive") }
        if train == nil, valid != nil || test != nil { throw ValidationError("--valid and --test need --train") }
        try validateCheckpointOptions()
    }

    /// Trains (``run()`` resolves --resume first).
    func execute(resuming resumed: ResumePoint?) throws {
        let wallStart = Date()
        let data = try loadData()
        let log: (String) -> Void = { json ? writeError($0 + "\n") : print($0) }
        log("data: \(data.description)")
        log("  vocabulary \(data.splits.vocabulary.count) \(level == .word ? "words" : "characters"), "
            + "train \(data.splits.train.count) tokens, valid \(data.splits.valid.count), test \(data.splits.test.count)")

        let config = RNNLanguageModel.Configuration(
            vocabularySize: data.splits.vocabulary.count, embeddingSize: embed, hiddenSize: hidden, layers: layers,
            cell: cell, dropout: dropout, input: input)
        let model = try RNNLanguageModel(configuration: config, seed: seed)
        model.truncation = bpttTruncation
        let rate = lr ?? (optimizer == .sgd ? 1 : 0.003)
        let opt: Optimizer = optimizer == .sgd ? SGD(learningRate: rate) : Adam(learningRate: rate)
        var options = TrainingOptions()
        options.batchSize = batch
        options.bptt = bptt
        options.epochs = epochs ?? (train == nil ? 10 : 4)
        options.clipNorm = clip > 0 ? clip : nil
        options.learningRateDecay = lrDecay
        options.learningRateDecayStart = lrDecayStart
        options.skipNonFinite = skipNonFinite
        options.measureAccuracy = accuracy
        log("model: \(layers)-layer \(cell == .lstm ? "LSTM" : "tanh RNN"), V=\(config.vocabularySize) \(input == .oneHot ? "one-hot inputs" : "D=\(embed)") H=\(hidden)"
            + (dropout > 0 ? ", dropout \(dropout)" : "") + ", "
            + "\(model.parameters.scalarCount) parameters; \(optimizer.rawValue) lr=\(rate), clip=\(clip), "
            + "N=\(batch) T=\(bptt)" + (bpttTruncation > 0 ? " (errors back at most \(bpttTruncation) steps)" : "")
            + ", \(options.epochs) epochs, seed \(seed)")

        let trainer = try resumed.map { try Trainer(resumingFrom: $0.checkpoint) }
            ?? Trainer(model: model, optimizer: opt, options: options)
        if let resumed { log("resumed from \(resumed.path): epoch \(trainer.epoch), after batch \(trainer.batch)") }
        var display = ProgressDisplay()
        log("")
        log("epoch  train ppl  valid ppl        lr   tokens/s    time")
        let reports = try runTraining(trainer, data: data, resumed: resumed, log: log) { event in
            switch event {
            case let .progress(p):
                display.show(
                    fraction: Double(p.batch) / Double(p.batchesPerEpoch),
                    label: "epoch \(p.epoch)/\(options.epochs)",
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

        let testPerplexity = data.splits.test.count >= 2 ? try trainer.model.perplexity(on: data.splits.test.ids) : nil
        let best = reports.compactMap(\.validPerplexity).min()
        log("")
        if let best { log(String(format: "best valid perplexity: %.2f", best)) }
        if let testPerplexity { log(String(format: "test perplexity: %.2f", testPerplexity)) }
        if let truth = data.truePerplexity, let testPerplexity {
            log(String(format: "true perplexity of the source: %.2f — the model is within %.1f%% of it",
                       truth, (testPerplexity / truth - 1) * 100))
        }
        if let out {
            try trainer.model.save(to: URL(fileURLWithPath: out), vocabulary: data.splits.vocabulary)
            log("model written to \(out)")
        }
        if let plot {
            let svg = LearningCurvePlot.svg(reports, title: "RNN LM on \(data.description)")
            try Data(svg.utf8).write(to: URL(fileURLWithPath: plot), options: .atomic)
            log("learning curve written to \(plot)")
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
            ]
            if let best { result["valid_perplexity"] = best }
            if let testPerplexity { result["test_perplexity"] = testPerplexity }
            if let truth = data.truePerplexity { result["true_perplexity"] = truth }
            if let accuracy = reports.last?.trainAccuracy { result["train_accuracy"] = accuracy }
            let encoded = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: encoded, as: UTF8.self))
        }
    }

    private func loadData() throws -> TrainingData {
        guard let train else { return try TrainingData.builtIn(seed: seed, level: level) }
        let trainURL = URL(fileURLWithPath: train)
        if let valid, let test {
            let splits = try Corpus.load(train: trainURL, valid: URL(fileURLWithPath: valid),
                                         test: URL(fileURLWithPath: test), level: level)
            return TrainingData(splits: splits, description: trainURL.lastPathComponent, truePerplexity: nil)
        }
        let trainCorpus = try Corpus.load(contentsOf: trainURL, level: level)
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
