import ArgumentParser
import Foundation
import RNNCore

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Report a trained model's perplexity on a text.",
        discussion: """
        With --dynamic, also the dynamic-evaluation perplexity (Mikolov's RNNLM -dynamic; Krause et al. 2018): a \
        copy of the model takes one SGD step on each window after scoring it, so it adapts to the text as it \
        reads it. The model file does not change. Report such numbers as dynamic evaluation: they are not \
        comparable with static perplexities.
        """)

    @Option(help: "A model written by rnncore train --out.", completion: .file()) var model: String
    @Option(help: "The text to evaluate (UTF-8); tokens missing from the model's vocabulary become <unk> if it has one, otherwise it is an error.", completion: .file())
    var data: String
    @Option(parsing: .unconditional, help: "Number of parallel streams (1 = exact stateful perplexity over the whole text; with --dynamic, the text is read in order).") var batch: Int = 1
    @Option(parsing: .unconditional, help: "Window length (with --dynamic, the model adapts once per window).") var bptt: Int = 35
    @Flag(help: "Also report the dynamic-evaluation perplexity (the model adapts to the text while scoring it).") var dynamic = false
    @Option(name: .customLong("dynamic-lr"), parsing: .unconditional,
            help: ArgumentHelp("SGD learning rate of dynamic evaluation (0 = static; default \(DynamicEvaluationOptions.defaultLearningRate)).", valueName: "rate"))
    var dynamicLearningRate: Float?
    @Option(name: .customLong("dynamic-clip"), parsing: .unconditional,
            help: ArgumentHelp("Clip each dynamic-evaluation gradient to this global norm (0 = no clipping; default \(DynamicEvaluationOptions.defaultClipNorm)).", valueName: "norm"))
    var dynamicClip: Double?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard bptt >= 1 else { throw ValidationError("--bptt must be at least 1, got \(bptt)") }
        guard dynamic || (dynamicLearningRate == nil && dynamicClip == nil) else {
            throw ValidationError("--dynamic-lr and --dynamic-clip need --dynamic")
        }
        if let rate = dynamicLearningRate, !(rate.isFinite && rate >= 0) {
            throw ValidationError("--dynamic-lr must be a finite number, 0 or positive, got \(rate)")
        }
        if let clip = dynamicClip, !(clip.isFinite && clip >= 0) {
            throw ValidationError("--dynamic-clip must be a finite number, 0 (no clipping) or positive, got \(clip)")
        }
    }

    func run() throws {
        let start = Date()
        let (lm, vocabulary) = try RNNLanguageModel.load(from: URL(fileURLWithPath: model))
        let corpus = try Corpus.load(contentsOf: URL(fileURLWithPath: data), vocabulary: vocabulary)
        guard corpus.count >= 2 else { throw ValidationError("\(data) holds fewer than 2 tokens") }
        if dynamic {
            try runDynamic(lm, ids: corpus.ids, start: start)
            return
        }
        let (loss, count) = try lm.meanLoss(on: corpus.ids, batchSize: batch, bptt: bptt)
        let seconds = Date().timeIntervalSince(start)
        if json {
            let result: [String: Any] = ["perplexity": exp(loss), "loss": loss, "tokens": count, "wall_seconds": seconds]
            print(try JSONOutput.line(result))
        } else {
            print(String(format: "perplexity %.3f (mean loss %.4f nats over %d predictions, %.1fs)", exp(loss), loss, count, seconds))
        }
    }

    /// `--dynamic`: the static and the dynamic perplexity with the same batching.
    private func runDynamic(_ lm: RNNLanguageModel, ids: [Int32], start: Date) throws {
        let options = DynamicEvaluationOptions(
            learningRate: dynamicLearningRate ?? DynamicEvaluationOptions.defaultLearningRate,
            clipNorm: dynamicClip ?? DynamicEvaluationOptions.defaultClipNorm, batchSize: batch, bptt: bptt)
        let result: DynamicEvaluationResult
        do {
            result = try lm.dynamicEvaluation(on: ids, options: options)
        } catch {
            throw ValidationError("dynamic evaluation of \(model) on \(data): \(error)")
        }
        let seconds = Date().timeIntervalSince(start)
        let clip = options.clipNorm ?? 0
        if json {
            var object: [String: Any] = [
                "perplexity": result.staticPerplexity, "loss": result.staticLoss,
                "dynamic_perplexity": result.dynamicPerplexity, "dynamic_loss": result.dynamicLoss,
                "dynamic_lr": Double(options.learningRate), "dynamic_clip": clip,
                "dynamic_updates": result.updates, "dynamic_clipped_updates": result.clippedUpdates,
                "batch": options.batchSize, "bptt": options.bptt,
                "tokens": result.count, "wall_seconds": seconds,
            ]
            if let diverged = result.divergedAfter { object["dynamic_diverged_after"] = diverged }
            print(try JSONOutput.line(object))
            return
        }
        print(String(format: "static perplexity %.3f (mean loss %.4f nats over %d predictions)",
                     result.staticPerplexity, result.staticLoss, result.count))
        let how = String(format: "SGD rate %g, clip %@, batch %d, bptt %d", Double(options.learningRate),
                         clip > 0 ? String(format: "%g", clip) : "none", options.batchSize, options.bptt)
        if let diverged = result.divergedAfter {
            print("dynamic perplexity: diverged after \(diverged) predictions (\(how)); lower --dynamic-lr or clip harder with --dynamic-clip")
        } else {
            print(String(format: "dynamic perplexity %.3f (mean loss %.4f nats; %@; %d updates, %d clipped; %.1fs)",
                         result.dynamicPerplexity, result.dynamicLoss, how, result.updates, result.clippedUpdates, seconds))
        }
    }
}
