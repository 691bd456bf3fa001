import Foundation
import Testing
import RNNCore

/// Messages of checkpoint errors a user can see: readable (no dump of a Swift `DecodingError`) and bounded (a
/// hostile 16 MB token or name is quoted by its first characters).
@Suite("Checkpoint error messages: readable and bounded")
struct CheckpointMessageTests {
    /// The metadata of a real model checkpoint.
    static func modelFile() throws -> SafeTensorsFile {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: 3, embeddingSize: 2, hiddenSize: 2, layers: 1)
        let model = try RNNLanguageModel(configuration: configuration, seed: 1)
        let scratch = try DataIOScratchDirectory()
        let url = scratch.file("m.safetensors")
        try model.save(to: url, vocabulary: try Vocabulary(tokens: ["a", "b", "<eos>"], level: .word))
        return try SafeTensorsFile.read(from: url)
    }

    /// The description of the error loading `file` as a model throws ("" when it loads).
    static func loadMessage(_ file: SafeTensorsFile) -> String {
        do {
            _ = try RNNLanguageModel.load(from: file)
            return ""
        } catch {
            return error.description
        }
    }

    @Test("A malformed configuration is explained by key, not dumped as a DecodingError")
    func malformedConfiguration() throws {
        var file = try Self.modelFile()
        file.metadata["configuration"] = "{}"
        let message = Self.loadMessage(file)
        #expect(message.hasPrefix("Invalid __metadata__: the configuration is missing or malformed: the key "), "\(message)")
        #expect(!message.contains("CodingKeys") && !message.contains("Context("), "\(message)")
    }

    @Test("A 16 MB invalid vocabulary token is quoted by its first 60 characters")
    func hugeVocabularyToken() throws {
        var file = try Self.modelFile()
        let token = "b " + String(decoding: [UInt8](repeating: 0x61, count: 16 << 20), as: UTF8.self)
        file.metadata["vocabulary"] = #"{"level":"word","tokens":["\#(token)","x","<eos>"]}"#
        let message = Self.loadMessage(file)
        #expect(message.contains("Invalid token \"b aaa"), "\(message.prefix(300))")
        #expect(message.contains("(\(token.utf8.count) bytes)"), "\(message.prefix(300))")
        #expect(message.utf8.count < 700, "\(message.utf8.count) bytes")
        #expect(!message.contains("CodingKeys"), "\(message.prefix(300))")
    }
}
