// Checkpoints: a trained model survives save → load bit for bit, saving replaces files atomically, and every way a
// checkpoint can be wrong is reported as its own CheckpointError.

import Foundation
import RNNCore
import Testing

@Suite("Models: checkpoints")
struct CheckpointTests {
    // MARK: Round trip

    @Test("A trained model round-trips bit for bit", arguments: [1, 2], CellKind.allCases)
    func roundTrip(layers: Int, cell: CellKind) throws {
        let scratch = try ModelIOScratchDirectory()
        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: layers, cell: cell)
        let url = scratch.file("model.safetensors")
        try model.save(to: url, vocabulary: vocabulary)

        let (loaded, loadedVocabulary) = try RNNLanguageModel.load(from: url)
        #expect(loaded.configuration == model.configuration)
        #expect(loaded.configuration == .init(vocabularySize: vocabulary.count, embeddingSize: 6, hiddenSize: 6, layers: layers,
                                              cell: cell))
        #expect(loadedVocabulary == vocabulary)
        #expect(loadedVocabulary.level == .word)
        #expect(loaded.parameters.map(\.name) == model.parameters.map(\.name))
        let original = model.namedTensors
        let restored = loaded.namedTensors
        #expect(Set(restored.keys) == Set(original.keys))
        #expect(original.count == 3 + cell.specification.parameters.count * layers)
        for (name, tensor) in original {
            let copy = try #require(restored[name], "tensor \(name) is missing after loading")
            #expect(ModelIOFixture.bitwiseEqual(copy, tensor), "tensor \(name) differs after loading")
        }

        let held = try ModelIOFixture.heldOutIDs(vocabulary: vocabulary)
        let before = try model.perplexity(on: held)
        let after = try loaded.perplexity(on: held)
        #expect(before.isFinite && before > 1)
        #expect(after.bitPattern == before.bitPattern, "perplexity \(after) after loading, \(before) before")
        // Batched evaluation too: the same computation on the same weights.
        #expect(try loaded.perplexity(on: held, batchSize: 3, bptt: 4).bitPattern
                == model.perplexity(on: held, batchSize: 3, bptt: 4).bitPattern)
    }

    @Test("The file is plain safetensors with our metadata; extra metadata cannot override it")
    func fileLayoutAndExtraMetadata() throws {
        let scratch = try ModelIOScratchDirectory()
        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: 2)
        let url = scratch.file("model.safetensors")
        try model.save(to: url, vocabulary: vocabulary,
                       metadata: ["note": "hello \"world\"\n", "format": "evil", "format_version": "99"])
        let file = try SafeTensorsFile.read(from: url)
        #expect(file.metadata["format"] == RNNLanguageModel.checkpointFormat)
        #expect(file.metadata["format_version"] == RNNLanguageModel.checkpointFormatVersion)
        #expect(file.metadata["note"] == "hello \"world\"\n")
        #expect(Set(file.tensors.keys) == Set(model.configuration.parameterShapes.map(\.name)))
        for (name, shape) in model.configuration.parameterShapes {
            #expect(file.tensors[name]?.shape == shape, "shape of \(name)")
            #expect(file.tensors[name]?.dtype == .float32, "dtype of \(name)")
        }
        let decoded = try JSONDecoder().decode(
            RNNLanguageModel.Configuration.self, from: Data(try #require(file.metadata["configuration"]).utf8))
        #expect(decoded == model.configuration)
        _ = try RNNLanguageModel.load(from: url)
    }

    @Test("Saving over an existing file replaces it and leaves no temporary file")
    func saveReplacesAtomically() throws {
        let scratch = try ModelIOScratchDirectory()
        let url = scratch.file("model.safetensors")
        try Data("an older file that is not a checkpoint".utf8).write(to: url)

        let (first, vocabulary) = try ModelIOFixture.trainedModel(layers: 1, seed: 1)
        try first.save(to: url, vocabulary: vocabulary)
        #expect(try RNNLanguageModel.load(from: url).model.namedTensors.keys.count == 6)

        let second = try RNNLanguageModel(
            configuration: .init(vocabularySize: vocabulary.count, embeddingSize: 6, hiddenSize: 6, layers: 2), seed: 2)
        try second.save(to: url, vocabulary: vocabulary)
        let loaded = try RNNLanguageModel.load(from: url).model
        #expect(loaded.configuration.layers == 2)
        for (name, tensor) in second.namedTensors {
            #expect(ModelIOFixture.bitwiseEqual(try #require(loaded.namedTensors[name]), tensor), "tensor \(name)")
        }
        #expect(try scratch.entries() == ["model.safetensors"])

        // A vocabulary that does not fit the model is refused before anything is written.
        let bytes = try Data(contentsOf: url)
        let small = try Vocabulary(tokens: ["a", "b"], level: .word)
        let error = #expect(throws: CheckpointError.self) { try first.save(to: url, vocabulary: small) }
        if let error, case .invalidMetadata = error {} else { Issue.record("expected invalidMetadata, got \(String(describing: error))") }
        #expect(try Data(contentsOf: url) == bytes)
        #expect(try scratch.entries() == ["model.safetensors"])
    }

    @Test("Saving into a missing directory fails with a file-system error and creates nothing")
    func saveIntoMissingDirectory() throws {
        let scratch = try ModelIOScratchDirectory()
        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: 1)
        let url = scratch.file("missing/model.safetensors")
        let error = #expect(throws: CheckpointError.self) { try model.save(to: url, vocabulary: vocabulary) }
        if let error, case .fileSystem = error {} else { Issue.record("expected fileSystem, got \(String(describing: error))") }
        #expect(try scratch.entries() == [])
    }

    // MARK: Invalid checkpoints

    /// A valid checkpoint of a 1-layer model (V 12, D = H = 6) and its parsed contents.
    static func goodFile(in scratch: ModelIOScratchDirectory) throws -> (file: SafeTensorsFile, vocabulary: Vocabulary) {
        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: 1)
        let url = scratch.file("good.safetensors")
        try model.save(to: url, vocabulary: vocabulary)
        return (try SafeTensorsFile.read(from: url), vocabulary)
    }

    @Test("Every corruption of a good checkpoint is reported precisely", arguments: ModelIOCorruption.allCases)
    func corruptCheckpoint(_ corruption: ModelIOCorruption) throws {
        let scratch = try ModelIOScratchDirectory()
        var (file, vocabulary) = try Self.goodFile(in: scratch)
        #expect(vocabulary.count == 12)
        _ = try RNNLanguageModel.load(from: file)  // the unedited file is fine
        try corruption.apply(to: &file, vocabulary: vocabulary)
        let url = scratch.file("corrupt.safetensors")
        try file.write(to: url)
        let error = #expect(throws: CheckpointError.self) { try RNNLanguageModel.load(from: url) }
        if let error {
            #expect(corruption.accepts(error), "\(corruption): unexpected \(error)")
            #expect(!error.description.isEmpty)
        }
    }

    @Test("Files that are not checkpoints at all give a CheckpointError, never a crash")
    func notACheckpoint() throws {
        let scratch = try ModelIOScratchDirectory()
        let text = scratch.file("text.txt")
        try Data("the cat sees the dog\nthe dog likes the fish\n".utf8).write(to: text)
        let short = scratch.file("short.txt")
        try Data("hi\n".utf8).write(to: short)
        let empty = scratch.file("empty.safetensors")
        try Data().write(to: empty)
        let missing = scratch.file("missing.safetensors")

        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: 1)
        let good = scratch.file("good.safetensors")
        try model.save(to: good, vocabulary: vocabulary)
        let truncated = scratch.file("truncated.safetensors")
        try Data(try Data(contentsOf: good).dropLast(4)).write(to: truncated)
        // A safetensors file without our metadata: the tensors alone.
        let bare = scratch.file("bare.safetensors")
        try SafeTensorsFile(tensors: try SafeTensorsFile.read(from: good).tensors).write(to: bare)

        let cases: [(URL, (CheckpointError) -> Bool)] = [
            (text, { if case .headerTooLarge = $0 { true } else { false } }),
            (short, { $0 == .fileTooShort(byteCount: 3) }),
            (empty, { $0 == .fileTooShort(byteCount: 0) }),
            (missing, { $0 == .fileNotFound(path: missing.path) }),
            (scratch.url, { if case .fileSystem = $0 { true } else { false } }),  // a directory
            (truncated, { if case .dataBeyondFileEnd = $0 { true } else { false } }),
            (bare, { if case .invalidMetadata(let reason) = $0 { reason.contains("missing") } else { false } }),
        ]
        for (url, accepts) in cases {
            let error = #expect(throws: CheckpointError.self, "\(url.lastPathComponent)") {
                try RNNLanguageModel.load(from: url)
            }
            if let error { #expect(accepts(error), "\(url.lastPathComponent): unexpected \(error)") }
        }
    }
}

/// One way to spoil a valid checkpoint of a 1-layer model with V 12, D = H = 6.
enum ModelIOCorruption: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case noMetadata, formatMissing, formatWrong, formatVersionWrong, formatVersionMissing
    case configurationMissing, configurationNotJSON, configurationMissingField, configurationWrongType
    case hiddenSizeZero, hiddenSizeHuge, embeddingSizeNegative, layersZero, layersTooMany, vocabularySizeZero
    case vocabularyMissing, vocabularyMalformed, vocabularyDuplicateToken
    case vocabularyShorterThanConfiguration, configurationLargerThanVocabulary
    case tensorMissing, tensorMissingForSecondLayer, extraTensor, extraLayerTensor
    case wrongShape, transposedEmbedding, int32Tensor, nanValue, infiniteValue

    var testDescription: String { rawValue }

    private static func configuration(_ V: Int, _ D: Int, _ H: Int, _ L: Int) -> String {
        "{\"embeddingSize\":\(D),\"hiddenSize\":\(H),\"layers\":\(L),\"vocabularySize\":\(V)}"
    }

    func apply(to file: inout SafeTensorsFile, vocabulary: Vocabulary) throws {
        let V = vocabulary.count
        switch self {
        case .noMetadata: file.metadata = [:]
        case .formatMissing: file.metadata["format"] = nil
        case .formatWrong: file.metadata["format"] = "pytorch"
        case .formatVersionWrong: file.metadata["format_version"] = "2"
        case .formatVersionMissing: file.metadata["format_version"] = nil
        case .configurationMissing: file.metadata["configuration"] = nil
        case .configurationNotJSON: file.metadata["configuration"] = "{\"vocabularySize\": 12,"
        case .configurationMissingField: file.metadata["configuration"] = "{\"vocabularySize\":12,\"hiddenSize\":6}"
        case .configurationWrongType:
            file.metadata["configuration"] = "{\"embeddingSize\":\"six\",\"hiddenSize\":6,\"layers\":1,\"vocabularySize\":12}"
        case .hiddenSizeZero: file.metadata["configuration"] = Self.configuration(V, 6, 0, 1)
        case .hiddenSizeHuge: file.metadata["configuration"] = Self.configuration(V, 6, 1_000_000_000, 1)
        case .embeddingSizeNegative: file.metadata["configuration"] = Self.configuration(V, -6, 6, 1)
        case .layersZero: file.metadata["configuration"] = Self.configuration(V, 6, 6, 0)
        case .layersTooMany: file.metadata["configuration"] = Self.configuration(V, 6, 6, 1_000)
        case .vocabularySizeZero: file.metadata["configuration"] = Self.configuration(0, 6, 6, 1)
        case .vocabularyMissing: file.metadata["vocabulary"] = nil
        case .vocabularyMalformed: file.metadata["vocabulary"] = "[\"the\", \"cat\"]"
        case .vocabularyDuplicateToken:
            var tokens = vocabulary.tokens
            tokens[1] = tokens[0]
            file.metadata["vocabulary"] = try Self.json(["level": "word", "tokens": tokens])
        case .vocabularyShorterThanConfiguration:
            file.metadata["vocabulary"] = try Self.json(["level": "word", "tokens": Array(vocabulary.tokens.dropLast())])
        case .configurationLargerThanVocabulary: file.metadata["configuration"] = Self.configuration(V + 1, 6, 6, 1)
        case .tensorMissing: file.tensors["rnn.0.wh"] = nil
        case .tensorMissingForSecondLayer: file.metadata["configuration"] = Self.configuration(V, 6, 6, 2)
        case .extraTensor: file.tensors["decoder.weight"] = NamedTensor(shape: [2], values: [Float(1), 2])
        case .extraLayerTensor: file.tensors["rnn.1.b"] = NamedTensor(shape: [6], values: [Float](repeating: 0, count: 6))
        case .wrongShape: file.tensors["output.bias"] = NamedTensor(shape: [V + 1], values: [Float](repeating: 0, count: V + 1))
        case .transposedEmbedding:
            let values = try #require(file.tensors["embedding.weight"]?.floats)
            file.tensors["embedding.weight"] = NamedTensor(shape: [6, V], values: values)
        case .int32Tensor: file.tensors["rnn.0.b"] = NamedTensor(shape: [6], values: [Int32](repeating: 0, count: 6))
        case .nanValue: try Self.poison(&file, "rnn.0.wx", index: 7, with: .nan)
        case .infiniteValue: try Self.poison(&file, "output.weight", index: 0, with: -.infinity)
        }
    }

    func accepts(_ error: CheckpointError) -> Bool {
        func metadata(_ words: String...) -> Bool {
            guard case .invalidMetadata(let reason) = error else { return false }
            return words.allSatisfy { reason.contains($0) }
        }
        switch self {
        case .noMetadata, .formatMissing: return metadata("not an RNNCore language model", "missing")
        case .formatWrong: return metadata("not an RNNCore language model", "pytorch")
        case .formatVersionWrong: return metadata("version 2")
        case .formatVersionMissing: return metadata("version missing")
        case .configurationMissing, .configurationNotJSON, .configurationMissingField, .configurationWrongType:
            return metadata("configuration is missing or malformed")
        case .hiddenSizeZero, .hiddenSizeHuge, .embeddingSizeNegative, .layersZero, .layersTooMany, .vocabularySizeZero:
            return metadata("out of range")
        case .vocabularyMissing, .vocabularyMalformed, .vocabularyDuplicateToken:
            return metadata("vocabulary is missing or malformed")
        case .vocabularyShorterThanConfiguration: return metadata("11 tokens", "12")
        case .configurationLargerThanVocabulary: return metadata("12 tokens", "13")
        case .tensorMissing: return error == .missingTensor(name: "rnn.0.wh")
        case .tensorMissingForSecondLayer: return error == .missingTensor(name: "rnn.1.wx")
        case .extraTensor, .extraLayerTensor:
            guard case .invalidEntry(let name, _) = error else { return false }
            return name == (self == .extraTensor ? "decoder.weight" : "rnn.1.b")
        case .wrongShape: return error == .shapeMismatch(name: "output.bias", expected: [12], actual: [13])
        case .transposedEmbedding: return error == .shapeMismatch(name: "embedding.weight", expected: [12, 6], actual: [6, 12])
        case .int32Tensor: return error == .dtypeMismatch(name: "rnn.0.b", expected: "F32", actual: "I32")
        case .nanValue, .infiniteValue:
            guard case .invalidEntry(let name, let reason) = error else { return false }
            return name == (self == .nanValue ? "rnn.0.wx" : "output.weight") && reason.contains("NaN or infinite")
        }
    }

    private static func json(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    private static func poison(_ file: inout SafeTensorsFile, _ name: String, index: Int, with value: Float) throws {
        let tensor = try #require(file.tensors[name])
        var values = try #require(tensor.floats)
        values[index] = value
        file.tensors[name] = NamedTensor(shape: tensor.shape, values: values)
    }
}
