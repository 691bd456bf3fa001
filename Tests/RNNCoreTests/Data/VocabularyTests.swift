import Foundation
import Testing
import RNNCore

@Suite("Vocabulary")
struct VocabularyTests {
    @Test("Word level: ids in order of first appearance, <eos> at every line end")
    func wordLevelBuild() throws {
        let text = "the cat sat\nthe dog\n"
        let vocabulary = try Vocabulary(building: text, level: .word)
        #expect(vocabulary.tokens == ["the", "cat", "sat", "<eos>", "dog"])
        #expect(vocabulary.count == 5)
        #expect(vocabulary.level == .word)
        #expect(try vocabulary.encode(text) == [0, 1, 2, 3, 0, 4, 3])
        #expect(vocabulary.id(of: "dog") == 4)
        #expect(vocabulary.id(of: "bird") == nil)
        #expect(vocabulary.token(at: 1) == "cat")
        #expect(vocabulary.token(at: 5) == nil)
        #expect(vocabulary.token(at: -1) == nil)
        #expect(vocabulary.contains("<eos>"))
    }

    @Test(
        "Word level: line rules match `for line in f: line.split() + ['<eos>']`",
        arguments: [
            ("a b\nc\n", ["a", "b", "<eos>", "c", "<eos>"]),
            ("a b\nc", ["a", "b", "<eos>", "c", "<eos>"]),
            (" a  b \n\n c\n", ["a", "b", "<eos>", "<eos>", "c", "<eos>"]),
            ("a\tb\r\nc\u{0B}d\u{0C}e\r\n", ["a", "b", "<eos>", "c", "d", "e", "<eos>"]),
            ("", []),
            ("\n", ["<eos>"]),
            ("   ", ["<eos>"]),
            ("héllo wörld 日本\n", ["héllo", "wörld", "日本", "<eos>"]),
        ])
    func wordLines(text: String, expected: [String]) throws {
        let vocabulary = try Vocabulary(building: text, level: .word)
        let ids = try vocabulary.encode(text)
        #expect(ids.map { vocabulary.token(at: $0)! } == expected)
    }

    @Test("Penn Treebank lines: leading and trailing spaces, <unk> is an ordinary token")
    func pennTreebankStyle() throws {
        let text = " aer banknote berlitz \n the <unk> said N \n"
        let vocabulary = try Vocabulary(building: text, level: .word)
        #expect(vocabulary.tokens == ["aer", "banknote", "berlitz", "<eos>", "the", "<unk>", "said", "N"])
        #expect(vocabulary.decode(try vocabulary.encode(text)) == "aer banknote berlitz\nthe <unk> said N\n")
    }

    @Test("Character level: Unicode characters, newline is a normal character")
    func characterLevel() throws {
        let text = "ab\nbé\r\n👍🏽ü"
        let vocabulary = try Vocabulary(building: text, level: .character)
        #expect(vocabulary.tokens == ["a", "b", "\n", "é", "\r\n", "👍🏽", "ü"])
        let ids = try vocabulary.encode(text)
        #expect(ids == [0, 1, 2, 1, 3, 4, 5, 6])
        #expect(vocabulary.decode(ids) == text)
    }

    @Test("Canonically equivalent spellings are one token, as with Swift's String equality")
    func canonicalEquivalence() throws {
        let precomposed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        let words = try Vocabulary(building: "\(precomposed) \(decomposed)\n", level: .word)
        #expect(words.count == 2)
        #expect(try words.encode(decomposed) == [0, 1])
        let characters = try Vocabulary(building: decomposed, level: .character)
        #expect(characters.count == 4)
        #expect(try characters.encode(precomposed) == [0, 1, 2, 3])
    }

    @Test("Character level: pure ASCII fast path, CRLF is one character")
    func characterLevelASCII() throws {
        let text = "hi\r\nhi\n\r"
        let vocabulary = try Vocabulary(building: text, level: .character)
        #expect(vocabulary.tokens == ["h", "i", "\r\n", "\n", "\r"])
        let ids = try vocabulary.encode(text)
        #expect(ids == [0, 1, 2, 0, 1, 3, 4])
        #expect(vocabulary.decode(ids) == text)
    }

    @Test("Building is deterministic", arguments: [Vocabulary.Level.word, .character])
    func deterministic(level: Vocabulary.Level) throws {
        let text = "one two three\ntwo three four\nfive\n"
        #expect(try Vocabulary(building: text, level: level) == Vocabulary(building: text, level: level))
    }

    @Test("Unknown words map to <unk> when the vocabulary has it")
    func unknownMapsToUnk() throws {
        let vocabulary = try Vocabulary(building: "a <unk> b\n", level: .word)
        #expect(try vocabulary.encode("a zebra b\n") == [0, 1, 2, 3])
        #expect(try vocabulary.encode("zebra\n", unknownTokens: .mapTo("b")) == [2, 3])
    }

    @Test("Unknown words are an error naming the token and its line when there is no <unk>")
    func unknownRejected() throws {
        let vocabulary = try Vocabulary(building: "a b\n", level: .word)
        #expect(throws: DataError.unknownToken("zebra", line: 2, path: nil)) {
            try vocabulary.encode("a b\nb zebra a\nyak\n")
        }
        let withUnknown = try Vocabulary(building: "a <unk>\n", level: .word)
        #expect(throws: DataError.unknownToken("c", line: 1, path: nil)) {
            try withUnknown.encode("c\n", unknownTokens: .reject)
        }
        #expect(throws: DataError.self) {
            try vocabulary.encode("zebra\n", unknownTokens: .mapTo("<unk>"))
        }
        let characters = try Vocabulary(building: "ab\n", level: .character)
        #expect(throws: DataError.unknownToken("é", line: 2, path: nil)) {
            try characters.encode("ab\naé")
        }
        #expect(throws: DataError.unknownToken("x", line: 1, path: nil)) {
            try characters.encode("x")
        }
    }

    @Test("Decoding joins words with spaces and renders <eos> as a newline")
    func decodeWords() throws {
        let vocabulary = try Vocabulary(tokens: ["<eos>", "a", "b"], level: .word)
        #expect(vocabulary.decode([1, 2, 0, 2, 0]) == "a b\nb\n")
        #expect(vocabulary.decode([1, 2]) == "a b")
        #expect(vocabulary.decode([0, 0, 1]) == "\n\na")
        #expect(vocabulary.decode([]) == "")
        #expect(vocabulary.decode([1, 7, -1]) == "a \u{FFFD} \u{FFFD}")
    }

    @Test("Encoding then decoding round-trips normalised text", arguments: [Vocabulary.Level.word, .character])
    func roundTrip(level: Vocabulary.Level) throws {
        let text = "it was the best of times\nit was the worst of times\n"
        let vocabulary = try Vocabulary(building: text, level: level)
        #expect(vocabulary.decode(try vocabulary.encode(text)) == text)
    }

    @Test("Explicit token lists are validated")
    func explicitTokens() throws {
        #expect(throws: DataError.duplicateToken("a")) { try Vocabulary(tokens: ["a", "b", "a"], level: .word) }
        #expect(throws: DataError.self) { try Vocabulary(tokens: [""], level: .word) }
        #expect(throws: DataError.self) { try Vocabulary(tokens: ["a b"], level: .word) }
        #expect(throws: DataError.self) { try Vocabulary(tokens: ["ab"], level: .character) }
        let characters = try Vocabulary(tokens: ["a", "\n", "<unk>"], level: .character)
        #expect(try characters.encode("a\nz") == [0, 1, 2])
    }

    @Test("The size limit is enforced")
    func sizeLimit() throws {
        #expect(Vocabulary.maximumCount == 1_000_000)
        #expect(throws: DataError.vocabularyTooLarge(limit: 3)) {
            try Vocabulary(building: "a b c d\n", level: .word, maximumCount: 3)
        }
        #expect(try Vocabulary(building: "a b\n", level: .word, maximumCount: 3).count == 3)
        let tooMany = (0...Vocabulary.maximumCount).map { "w\($0)" }
        #expect(throws: DataError.vocabularyTooLarge(limit: Vocabulary.maximumCount)) {
            try Vocabulary(tokens: tooMany, level: .word)
        }
    }

    @Test("Codable round trip; decoding validates the tokens")
    func codable() throws {
        let vocabulary = try Vocabulary(building: "x y\nz\n", level: .word)
        let data = try JSONEncoder().encode(vocabulary)
        #expect(try JSONDecoder().decode(Vocabulary.self, from: data) == vocabulary)
        let json = String(decoding: data, as: UTF8.self)
        #expect(json.contains("\"level\":\"word\""))

        let duplicate = Data(#"{"level":"word","tokens":["a","a"]}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Vocabulary.self, from: duplicate) }
    }
}
