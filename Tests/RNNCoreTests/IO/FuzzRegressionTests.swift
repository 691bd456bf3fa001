import Foundation
import Testing
import RNNCore

/// Replays every input kept in fuzz/regressions/ (seeds, and each crash the fuzzers of fuzz/run.sh found) through
/// the same code paths as the fuzz targets: each must load or fail with a typed error, never crash.
@Suite("IO: fuzzing regression inputs")
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/regressions")

    static func inputs(_ target: String) -> [URL] {
        let folder = root.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.sorted().map { folder.appendingPathComponent($0) }
    }

    @Test func checkpointInputsLoadOrFailCleanly() throws {
        let files = Self.inputs("checkpoint")
        #expect(!files.isEmpty, "no inputs in \(Self.root.path)/checkpoint")
        for url in files {
            let bytes = try [UInt8](Data(contentsOf: url))
            do {
                let file = try SafeTensorsFile(bytes: bytes)
                // Compared as bytes: tensors may hold NaNs (the first input the fuzzer kept), never equal as floats.
                let first = try file.serialized()
                #expect(try SafeTensorsFile(bytes: first).serialized() == first, "\(url.lastPathComponent)")
                _ = try? RNNLanguageModel.load(from: file)
            } catch {
                // A typed CheckpointError is the expected outcome for a malformed input.
            }
        }
    }

    @Test func corpusInputsLoadOrFailCleanly() throws {
        let files = Self.inputs("corpus")
        #expect(!files.isEmpty, "no inputs in \(Self.root.path)/corpus")
        for url in files {
            let bytes = try [UInt8](Data(contentsOf: url))
            for level in Vocabulary.Level.allCases {
                guard let corpus = try? Corpus(utf8: bytes, level: level, maximumLineLength: 4096) else { continue }
                let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
                // Through Corpus, which normalises line ends (CRLF → LF) as loading does.
                let again = try Corpus(text: String(decoding: body, as: UTF8.self), vocabulary: corpus.vocabulary,
                                       unknownTokens: .reject).ids
                #expect(again == corpus.ids, "\(url.lastPathComponent) at level \(level)")
            }
        }
    }

    @Test func corpusFromBytesValidatesLikeAFile() throws {
        #expect(throws: DataError.self) { try Corpus(utf8: [], level: .word) }
        #expect(throws: DataError.self) { try Corpus(utf8: [0x61, 0xFF, 0x62], level: .character) }
        let corpus = try Corpus(utf8: Array("a b\nb a\n".utf8), level: .word)
        #expect(corpus.vocabulary.count == 3 && corpus.count == 6)
    }
}
