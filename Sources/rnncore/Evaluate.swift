import ArgumentParser
import Foundation
import RNNCore

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Report a trained model's perplexity on a text.")

    @Option(help: "A model written by rnncore train --out.", completion: .file()) var model: String
    @Option(help: "The text to evaluate (UTF-8); tokens missing from the model's vocabulary become <unk> if it has one, otherwise it is an error.", completion: .file())
    var data: String
    @Option(parsing: .unconditional, help: "Number of parallel streams (1 = exact stateful perplexity over the whole text).") var batch: Int = 1
    @Option(parsing: .unconditional, help: "Window length.") var bptt: Int = 35
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard bptt >= 1 else { throw ValidationError("--bptt must be at least 1, got \(bptt)") }
    }

    func run() throws {
        let start = Date()
        let (lm, vocabulary) = try RNNLanguageModel.load(from: URL(fileURLWithPath: model))
        let corpus = try Corpus.load(contentsOf: URL(fileURLWithPath: data), vocabulary: vocabulary)
        guard corpus.count >= 2 else { throw ValidationError("\(data) holds fewer than 2 tokens") }
        let (loss, count) = try lm.meanLoss(on: corpus.ids, batchSize: batch, bptt: bptt)
        let seconds = Date().timeIntervalSince(start)
        if json {
            let result: [String: Any] = ["perplexity": exp(loss), "loss": loss, "tokens": count, "wall_seconds": seconds]
            print(try JSONOutput.line(result))
        } else {
            print(String(format: "perplexity %.3f (mean loss %.4f nats over %d predictions, %.1fs)", exp(loss), loss, count, seconds))
        }
    }
}
