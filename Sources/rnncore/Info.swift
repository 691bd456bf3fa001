import ArgumentParser
import Foundation
import RNNCore

/// `rnncore info`: what a model file or training checkpoint holds.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model file or a training checkpoint.",
        discussion: """
        Prints the format and its version, the cell, the sizes, the parameter count, the vocabulary (size, level \
        and its first 10 tokens in vocabulary order: files keep no token counts, so the most frequent words are \
        not known), and for a training checkpoint the run's settings record and where it stopped (epoch, batch).
        """)

    @Option(help: "A model written by rnncore train --out, or a training checkpoint.") var model: String
    @Flag(help: "Print one JSON object instead of text.") var json = false

    /// How many tokens of the vocabulary are listed.
    static let shownTokens = 10

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile.read(from: url)
        } catch {
            throw ValidationError("\(model): \(error)")
        }
        let format = file.metadata["format"]
        let version = file.metadata["format_version"] ?? "missing"
        let configuration: RNNLanguageModel.Configuration
        let vocabulary: Vocabulary
        var checkpoint: TrainingCheckpoint? = nil
        do {
            switch format {
            case RNNLanguageModel.checkpointFormat?:
                (configuration, vocabulary) = try Self.modelContents(file)
            case TrainingCheckpoint.format?:
                let saved = try TrainingCheckpoint(file: file)
                (configuration, vocabulary, checkpoint) = (saved.configuration, saved.vocabulary, saved)
            default:
                throw ValidationError("\(model) is neither an RNNCore model (format \"\(RNNLanguageModel.checkpointFormat)\") nor a training checkpoint (format \"\(TrainingCheckpoint.format)\"): its format is \(format.map { "\"\(Generate.clipped($0))\"" } ?? "missing")")
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(model): \(error)")
        }
        let spec = configuration.cell.specification
        let parameters = configuration.parameterShapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let first = Array(vocabulary.tokens.prefix(Self.shownTokens))
        if json {
            var object: [String: Any] = [
                "file": model,
                "format": format ?? "",
                "format_version": version,
                "cell": configuration.cell.rawValue,
                "cell_name": spec.displayName,
                "layers": configuration.layers,
                "embedding_size": configuration.embeddingSize,
                "hidden_size": configuration.hiddenSize,
                "input": configuration.input.rawValue,
                "dropout": Double(configuration.dropout),
                "softmax": configuration.softmax.rawValue,
                "cutoffs": configuration.cutoffs,
                "div_value": Double(configuration.divValue),
                "tied_weights": configuration.tiedWeights,
                "parameters": parameters,
                "vocabulary_size": vocabulary.count,
                "level": vocabulary.level.rawValue,
                "first_tokens": first,
            ]
            if let checkpoint {
                object["settings"] = try JSONOutput.object(checkpoint.settings)
                object["epoch"] = checkpoint.epoch
                object["batch"] = checkpoint.batch
                object["step"] = checkpoint.step
            }
            print(try JSONOutput.line(object))
            return
        }
        let kind = checkpoint == nil ? "model" : "training checkpoint"
        var lines = [
            "\(model): RNNCore \(kind) (format \(format ?? ""), version \(version))",
            "cell: \(spec.displayName) (\(configuration.cell.rawValue)), \(configuration.layers) layer\(configuration.layers == 1 ? "" : "s")",
            "sizes: " + (configuration.input == .oneHot ? "one-hot inputs (\(configuration.embeddingSize))"
                                                      : "embedding \(configuration.embeddingSize)")
                + ", hidden \(configuration.hiddenSize), dropout \(configuration.dropout)",
            "output: \(configuration.outputDescription)",
            "parameters: \(parameters)",
            "vocabulary: \(vocabulary.count) tokens, \(vocabulary.level.rawValue) level",
            "the first \(first.count) tokens in vocabulary order (no counts are stored): "
                + first.map { vocabulary.level == .word ? Generate.clipped($0) : String(reflecting: $0) }
                    .joined(separator: ", "),
        ]
        if let checkpoint {
            let epochs = checkpoint.settings.training.epochs ?? 0
            lines.append(checkpoint.epoch > epochs
                ? "progress: finished (\(epochs) epochs, \(checkpoint.step) batches)"
                : "progress: epoch \(checkpoint.epoch) of \(epochs), \(checkpoint.batch) batches done in it (\(checkpoint.step) in all)")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            lines.append("settings: " + String(decoding: try encoder.encode(checkpoint.settings), as: UTF8.self))
        }
        print(lines.joined(separator: "\n"))
    }

    /// The configuration and vocabulary of a model file, validated as loading does (readable errors).
    static func modelContents(_ file: SafeTensorsFile) throws -> (RNNLanguageModel.Configuration, Vocabulary) {
        let (model, vocabulary) = try RNNLanguageModel.load(from: file)
        return (model.configuration, vocabulary)
    }
}
