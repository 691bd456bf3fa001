// libFuzzer target: arbitrary bytes as a corpus text at both tokenisation levels, and as a vocabulary's JSON (the
// checkpoint metadata path). Reading must either succeed or throw — never crash; a text that loads must encode back
// to the same ids with its own vocabulary, and the vocabulary must survive its JSON form. Built and run by
// fuzz/run.sh; the inputs in fuzz/regressions/corpus are also replayed by the Swift tests (FuzzRegressionTests).
import Foundation
import RNNCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCorpus(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for level in Vocabulary.Level.allCases {
        guard let corpus = try? Corpus(utf8: bytes, level: level, maximumLineLength: 4096) else { continue }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        // Through Corpus, which normalises line ends (CRLF → LF) as loading does.
        let again = try? Corpus(text: String(decoding: body, as: UTF8.self), vocabulary: corpus.vocabulary,
                                unknownTokens: .reject).ids
        precondition(again == corpus.ids, "re-encoding with the corpus's own vocabulary changed the ids")
        if let json = try? JSONEncoder().encode(corpus.vocabulary) {
            precondition((try? JSONDecoder().decode(Vocabulary.self, from: json)) == corpus.vocabulary,
                         "the vocabulary's JSON round trip changed it")
        }
        _ = corpus.vocabulary.decode(corpus.ids)
    }
    _ = try? JSONDecoder().decode(Vocabulary.self, from: Data(bytes))
    return 0
}
