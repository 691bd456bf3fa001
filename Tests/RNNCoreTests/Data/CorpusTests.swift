import Foundation
import Testing
import RNNCore

@Suite("Corpus loading")
struct CorpusTests {
    @Test("Loads a UTF-8 file and builds its vocabulary")
    func loadFile() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write(" the cat \n the dog \n", to: "train.txt")
        let corpus = try Corpus.load(contentsOf: url, level: .word)
        #expect(corpus.vocabulary.tokens == ["the", "cat", "<eos>", "dog"])
        #expect(corpus.ids == [0, 1, 2, 0, 3, 2])
        #expect(corpus.count == 6)
        #expect(corpus.text == "the cat\nthe dog\n")

        let characters = try Corpus.load(contentsOf: url, level: .character)
        #expect(characters.count == 20)
        #expect(characters.text == " the cat \n the dog \n")
    }

    @Test("A leading byte-order mark is skipped")
    func byteOrderMark() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write([0xEF, 0xBB, 0xBF] + Array("a b\n".utf8), to: "bom.txt")
        #expect(try Corpus.load(contentsOf: url, level: .word).vocabulary.tokens == ["a", "b", "<eos>"])
        let onlyMark = try scratch.write([0xEF, 0xBB, 0xBF], to: "mark.txt")
        #expect(throws: DataError.emptyFile(path: onlyMark.path)) { try Corpus.load(contentsOf: onlyMark, level: .word) }
    }

    @Test("Missing, empty and unreadable files give clear errors")
    func fileErrors() throws {
        let scratch = try DataIOScratchDirectory()
        let missing = scratch.file("missing.txt")
        #expect(throws: DataError.fileNotFound(path: missing.path)) { try Corpus.load(contentsOf: missing, level: .word) }
        let empty = try scratch.write([], to: "empty.txt")
        #expect(throws: DataError.emptyFile(path: empty.path)) { try Corpus.load(contentsOf: empty, level: .character) }
        let directory = scratch.file("folder")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        #expect {
            try Corpus.load(contentsOf: directory, level: .word)
        } throws: { error in
            guard case .fileSystem(let path, let reason)? = error as? DataError else { return false }
            return path == directory.path && reason.contains("directory")
        }
    }

    @Test(
        "Invalid UTF-8 is reported with its byte offset",
        arguments: [
            ([0x61, 0x80, 0x62], 1),  // stray continuation byte
            ([0x61, 0x62, 0xC0, 0xAF], 2),  // overlong '/'
            ([0xE2, 0x82, 0xAC, 0xED, 0xA0, 0x80], 3),  // UTF-16 surrogate after '€'
            ([0x61, 0xE2, 0x82], 1),  // truncated at the end
            ([0x61, 0x0A, 0x62, 0xF5, 0x80, 0x80, 0x80], 3),  // above U+10FFFF
            ([0xF0, 0x9F, 0x91, 0x8D, 0xFF], 4),  // 0xFF never appears
            ([0xEF, 0xBB, 0xBF, 0x61, 0xC3], 4),  // after a byte-order mark: offsets count from the file start
        ] as [([UInt8], Int)])
    func invalidUTF8(bytes: [UInt8], offset: Int) throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write(bytes, to: "bad.txt")
        #expect(throws: DataError.invalidUTF8(path: url.path, byteOffset: offset)) {
            try Corpus.load(contentsOf: url, level: .word)
        }
    }

    @Test("The reported offset is the end of the longest valid prefix (random bytes vs the standard library)")
    func invalidUTF8Fuzz() throws {
        let scratch = try DataIOScratchDirectory()
        var generator = Xoshiro256StarStar(seed: 2024)
        let alphabet: [UInt8] = [0x61, 0x0A, 0x7F, 0x80, 0xBF, 0xC2, 0xC0, 0xDF, 0xE0, 0xA0, 0xED, 0x9F, 0xEF, 0xF0, 0x90, 0xF4, 0x8F, 0xF5, 0xFF]
        var checked = 0
        for index in 0..<300 {
            let length = 1 + generator.nextInt(below: 12)
            let bytes = [0x61] + (0..<length).map { _ in alphabet[generator.nextInt(below: alphabet.count)] }
            guard String(validating: bytes, as: UTF8.self) == nil else { continue }
            let validPrefix = (0...bytes.count).last { String(validating: bytes[..<$0], as: UTF8.self) != nil }!
            let url = try scratch.write(bytes, to: "fuzz\(index).txt")
            #expect(throws: DataError.invalidUTF8(path: url.path, byteOffset: validPrefix)) {
                try Corpus.load(contentsOf: url, level: .character)
            }
            checked += 1
        }
        #expect(checked > 100)
    }

    @Test("A line longer than the limit is an error naming the line and its length")
    func lineTooLong() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write("short\nexactly10c\nthis one is too long\nx\n", to: "lines.txt")
        #expect(throws: DataError.lineTooLong(path: url.path, line: 3, length: 20, limit: 10)) {
            try Corpus.load(contentsOf: url, level: .word, maximumLineLength: 10)
        }
        #expect(try Corpus.load(contentsOf: url, level: .word, maximumLineLength: 20).count == 12)
        let lastLine = try scratch.write("ok\n0123456789A", to: "last.txt")
        #expect(throws: DataError.lineTooLong(path: lastLine.path, line: 2, length: 11, limit: 10)) {
            try Corpus.load(contentsOf: lastLine, level: .character, maximumLineLength: 10)
        }
        #expect(Corpus.defaultMaximumLineLength == 1 << 20)
    }

    @Test("Train, valid and test share the training vocabulary")
    func splits() throws {
        let scratch = try DataIOScratchDirectory()
        let train = try scratch.write(" a b <unk> \n b c \n", to: "train.txt")
        let valid = try scratch.write(" c a \n", to: "valid.txt")
        let test = try scratch.write(" zebra b \n", to: "test.txt")
        let splits = try Corpus.load(train: train, valid: valid, test: test, level: .word)
        #expect(splits.vocabulary.tokens == ["a", "b", "<unk>", "<eos>", "c"])
        #expect(splits.valid.ids == [4, 0, 3])
        #expect(splits.test.ids == [2, 1, 3])  // zebra → <unk>
        #expect(splits.valid.vocabulary == splits.vocabulary && splits.test.vocabulary == splits.vocabulary)
    }

    @Test("Without <unk> in the training text an unknown word is an error naming file and line")
    func splitsUnknownWord() throws {
        let scratch = try DataIOScratchDirectory()
        let train = try scratch.write("a b\nb c\n", to: "train.txt")
        let valid = try scratch.write("c a\n", to: "valid.txt")
        let test = try scratch.write("a\nb zebra\n", to: "test.txt")
        #expect(throws: DataError.unknownToken("zebra", line: 2, path: test.path)) {
            try Corpus.load(train: train, valid: valid, test: test, level: .word)
        }
        let missing = scratch.file("nope.txt")
        #expect(throws: DataError.fileNotFound(path: missing.path)) {
            try Corpus.load(train: train, valid: missing, test: test, level: .word)
        }
    }

    @Test("In-memory corpora and id validation")
    func inMemory() throws {
        let corpus = try Corpus(text: "x y\n", level: .word)
        #expect(corpus.ids == [0, 1, 2])
        let encoded = try Corpus(text: "y x\n", vocabulary: corpus.vocabulary)
        #expect(encoded.ids == [1, 0, 2])
        #expect(try Corpus(ids: [2, 1], vocabulary: corpus.vocabulary).text == "\ny")
        #expect(throws: DataError.tokenIDOutOfRange(id: 3, vocabularyCount: 3)) {
            try Corpus(ids: [0, 3], vocabulary: corpus.vocabulary)
        }
        #expect(throws: DataError.tokenIDOutOfRange(id: -1, vocabularyCount: 3)) {
            try Corpus(ids: [-1], vocabulary: corpus.vocabulary)
        }
    }

    @Test("A Penn-Treebank-sized file (5 MB, 10 000 types) loads with the right vocabulary")
    func pennTreebankSized() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write(Self.makePennTreebankLikeText(), to: "big.txt")
        let clock = ContinuousClock()
        let start = clock.now
        let corpus = try Corpus.load(contentsOf: url, level: .word)
        let elapsed = clock.now - start
        #expect(corpus.vocabulary.count == 10_000)
        #expect(corpus.count > 900_000)
        #if !DEBUG
        // The contract: under a second in a release build.
        #expect(elapsed < .seconds(1))
        #endif
        _ = elapsed
    }

    /// About 930k tokens on 42k lines over 9 998 words plus <unk> and <eos>, like ptb.train.txt.
    static func makePennTreebankLikeText() -> String {
        var generator = Xoshiro256StarStar(seed: 1989)
        var words = ["<unk>"]
        for i in 0..<9_998 { words.append("w\(String(i, radix: 36))x") }
        var text = ""
        text.reserveCapacity(5_200_000)
        var lineCount = 0
        var tokens = 0
        while tokens < 887_000 || lineCount < 9_998 {
            text += " "
            let length = 10 + generator.nextInt(below: 27)
            for position in 0..<length {
                // The first lines cover every word once; then a skewed choice (squared uniform favours low ranks).
                let index: Int
                if lineCount * 10 + position < words.count, position < 10 {
                    index = lineCount * 10 + position
                } else {
                    let u = generator.nextDouble()
                    index = Int(u * u * Double(words.count))
                }
                text += words[index]
                text += " "
                tokens += 1
            }
            text += "\n"
            lineCount += 1
        }
        return text
    }
}
