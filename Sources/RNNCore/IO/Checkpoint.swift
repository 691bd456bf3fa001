import Foundation

/// Saving and loading language models as safetensors files.
///
/// Layout: one `F32` tensor per parameter, named as in ``RNNLanguageModel/Configuration/parameterShapes``
/// (`embedding.weight`, `rnn.0.wx`, …), and in `__metadata__` the strings `format` (`"rnncore-lm"`),
/// `format_version` (`"1"`), `configuration` (JSON of the configuration) and `vocabulary` (JSON of the vocabulary).
/// Any safetensors reader (Python's `safetensors`, numpy with a few lines) can open the file.
extension RNNLanguageModel {
    /// The value of the `format` metadata key.
    public static let checkpointFormat = "rnncore-lm"
    /// The value of the `format_version` metadata key this version writes and reads.
    public static let checkpointFormatVersion = "1"

    /// Writes the model and its vocabulary atomically (temporary file, fsync, rename): an existing file at `url` is
    /// replaced only once the new one is complete.
    /// - Throws: ``CheckpointError/invalidMetadata(reason:)`` when the vocabulary does not fit the model, or a file
    ///   system error.
    public func save(to url: URL, vocabulary: Vocabulary, metadata extra: [String: String] = [:]) throws(CheckpointError) {
        guard vocabulary.count == configuration.vocabularySize else {
            throw .invalidMetadata(reason: "the vocabulary has \(vocabulary.count) tokens but the model \(configuration.vocabularySize)")
        }
        var file = SafeTensorsFile()
        for parameter in parameters {
            file.tensors[parameter.name] = NamedTensor(shape: parameter.shape, values: parameter.value.scalars)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            file.metadata = extra.merging([
                "format": Self.checkpointFormat,
                "format_version": Self.checkpointFormatVersion,
                "configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
                "vocabulary": String(decoding: try encoder.encode(vocabulary), as: UTF8.self),
            ]) { _, ours in ours }
        } catch {
            throw .invalidMetadata(reason: "cannot encode the configuration or vocabulary: \(error)")
        }
        try file.write(to: url)
    }

    /// Reads a model written by ``save(to:vocabulary:metadata:)``, validating the file, the configuration, the
    /// vocabulary and every tensor's name, dtype and shape.
    /// - Throws: a ``CheckpointError`` naming the first problem.
    public static func load(from url: URL) throws(CheckpointError) -> (model: RNNLanguageModel, vocabulary: Vocabulary) {
        try load(from: SafeTensorsFile.read(from: url))
    }

    /// Builds a model from the parsed contents of a checkpoint, with the same validation as ``load(from:)-swift.type.method``.
    ///
    /// A training checkpoint (``TrainingCheckpoint``) is accepted too: it gives the model's weights as they were at
    /// the batch the checkpoint was written (without the hidden state carried in training).
    public static func load(from file: SafeTensorsFile) throws(CheckpointError) -> (model: RNNLanguageModel, vocabulary: Vocabulary) {
        let meta = file.metadata
        if meta["format"] == TrainingCheckpoint.format {
            let checkpoint = try TrainingCheckpoint(file: file)
            let model = try checkpoint.makeModel()
            model.resetState()  // like a model checkpoint: no state carried from the training stream
            return (model, checkpoint.vocabulary)
        }
        guard meta["format"] == checkpointFormat else {
            throw .invalidMetadata(reason: "not an RNNCore language model (format is \(meta["format"].map { "\"\($0)\"" } ?? "missing"), expected \"\(checkpointFormat)\")")
        }
        guard meta["format_version"] == checkpointFormatVersion else {
            throw .invalidMetadata(reason: "format version \(meta["format_version"] ?? "missing") is not supported (this build reads \(checkpointFormatVersion))")
        }
        let configuration: Configuration
        let vocabulary: Vocabulary
        do {
            configuration = try JSONDecoder().decode(Configuration.self, from: Data((meta["configuration"] ?? "").utf8))
        } catch {
            throw .invalidMetadata(reason: "the configuration is missing or malformed: \(CheckpointError.explain(error))")
        }
        do {
            try configuration.validate()
        } catch {
            throw .invalidMetadata(reason: "the configuration is out of range: \(error)")
        }
        do {
            vocabulary = try JSONDecoder().decode(Vocabulary.self, from: Data((meta["vocabulary"] ?? "").utf8))
        } catch {
            throw .invalidMetadata(reason: "the vocabulary is missing or malformed: \(CheckpointError.explain(error))")
        }
        guard vocabulary.count == configuration.vocabularySize else {
            throw .invalidMetadata(reason: "the vocabulary has \(vocabulary.count) tokens but the configuration says \(configuration.vocabularySize)")
        }
        let expected = configuration.parameterShapes
        let names = Set(expected.map(\.name))
        if let extra = file.tensors.keys.sorted().first(where: { !names.contains($0) }) {
            throw .invalidEntry(name: extra, reason: "this model configuration has no tensor of that name")
        }
        var tensors: [String: Tensor] = [:]
        for (name, shape) in expected {
            let values = try file.floats(named: name, shape: shape)
            guard values.allSatisfy(\.isFinite) else {
                throw .invalidEntry(name: name, reason: "holds NaN or infinite values")
            }
            tensors[name] = try? Tensor(shape: shape, scalars: values)
        }
        do {
            return (try RNNLanguageModel(configuration: configuration, tensors: tensors), vocabulary)
        } catch {
            throw .invalidMetadata(reason: "\(error)")
        }
    }
}
