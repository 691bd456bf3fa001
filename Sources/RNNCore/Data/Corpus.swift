import Foundation

/// A tokenised text: token ids together with the vocabulary that gives them meaning.
///
/// Load one from a UTF-8 file with ``load(contentsOf:level:maximumLineLength:maximumByteCount:)``, or a
/// train/validation/test triple sharing the training vocabulary with
/// ``load(train:valid:test:level:unknownTokens:maximumLineLength:maximumByteCount:)``.
///
/// Line ends are normalised before tokenising, at both levels: every run of carriage returns followed by a line
/// feed (`"\r\n"`, `"\r\r\n"`) becomes `"\n"`, and so does a run of carriage returns that ends the text (a CRLF
/// file whose last `"\n"` was cut off). A file with Windows line ends therefore gives exactly the tokens of the same
/// file with Unix ones; a carriage return anywhere else is kept (a character at the character level, whitespace at
/// the word level). ``Vocabulary`` itself does not normalise: `Vocabulary(building:level:)` on `"\r\n"` sees one
/// character.
///
/// What can be read: regular files, and pipes or character devices (`--train <(zcat corpus.gz)`, `/dev/stdin`),
/// which are read until end of file up to ``defaultMaximumByteCount`` (or the `maximumByteCount` given). Opening a
/// FIFO that has no writer blocks until a writer opens it, as `cat` does. Directories, sockets, block devices and
/// unreadable files are refused with a message naming the file.
///
/// Loading works on the file's bytes (one validation pass, one line-length pass, one tokenisation pass), so Penn
/// Treebank's 5 MB training file loads in well under a second in a release build.
public struct Corpus: Sendable, Equatable {
    /// A training, a validation and a test corpus that share one vocabulary (built on the training text).
    public struct Splits: Sendable, Equatable {
        /// The training corpus; its vocabulary is every token of the training text.
        public var train: Corpus
        /// The validation corpus, encoded with the training vocabulary.
        public var valid: Corpus
        /// The test corpus, encoded with the training vocabulary.
        public var test: Corpus

        /// Creates splits from three corpora; they should share one vocabulary.
        public init(train: Corpus, valid: Corpus, test: Corpus) {
            self.train = train
            self.valid = valid
            self.test = test
        }

        /// The shared vocabulary (the training corpus's).
        public var vocabulary: Vocabulary { train.vocabulary }
    }

    /// The default limit on the length of one line, in bytes: 1 MiB.
    ///
    /// Real corpora have short lines (PTB's longest is under 1 KB), so a longer line usually means the wrong file (a
    /// binary, or text with the wrong line ends); pass a larger `maximumLineLength` for single-line corpora such as
    /// text8.
    public static let defaultMaximumLineLength = 1 << 20

    /// The default limit on the size of a corpus file or stream, in bytes: 4 GiB.
    ///
    /// Larger than any corpus an RNN trained on the CPU gets through (PTB's training text is 5 MB); it turns an
    /// endless stream such as `/dev/zero` into a clear error instead of exhausting memory.
    public static let defaultMaximumByteCount = 1 << 32

    /// The vocabulary the ids refer to.
    public let vocabulary: Vocabulary

    /// The token ids, each in `0..<vocabulary.count`.
    public let ids: [Int32]

    /// Creates a corpus from token ids.
    /// - Parameters:
    ///   - ids: Token ids, each in `0..<vocabulary.count`.
    ///   - vocabulary: The vocabulary they refer to.
    /// - Throws: ``DataError/tokenIDOutOfRange(id:vocabularyCount:)`` for the first id outside the vocabulary.
    public init(ids: [Int32], vocabulary: Vocabulary) throws(DataError) {
        let count = Int32(clamping: vocabulary.count)
        if let bad = ids.first(where: { $0 < 0 || $0 >= count }) {
            throw .tokenIDOutOfRange(id: bad, vocabularyCount: vocabulary.count)
        }
        self.init(uncheckedIDs: ids, vocabulary: vocabulary)
    }

    /// Tokenises `text` and builds its vocabulary (ids in order of first appearance).
    /// - Throws: ``DataError/vocabularyTooLarge(limit:)``.
    ///
    /// Line ends are normalised first (see ``Corpus``).
    public init(text: String, level: Vocabulary.Level) throws(DataError) {
        let (vocabulary, ids) = try Vocabulary.build(from: LineEnds.normalized(text), level: level)
        self.init(uncheckedIDs: ids, vocabulary: vocabulary)
    }

    /// Tokenises `text` with an existing vocabulary, after normalising its line ends (see ``Corpus``).
    /// - Parameters:
    ///   - text: The text.
    ///   - vocabulary: The vocabulary to encode with.
    ///   - unknownTokens: What to do with tokens the vocabulary lacks (by default: `"<unk>"` if present, else error).
    /// - Throws: ``DataError/unknownToken(_:line:path:)`` as ``Vocabulary/encode(_:unknownTokens:)`` does.
    public init(
        text: String, vocabulary: Vocabulary,
        unknownTokens: Vocabulary.UnknownTokenPolicy = .mapToUnknownIfPresent
    ) throws(DataError) {
        let ids = try vocabulary.encode(LineEnds.normalized(text), unknownTokens: unknownTokens)
        self.init(uncheckedIDs: ids, vocabulary: vocabulary)
    }

    init(uncheckedIDs ids: [Int32], vocabulary: Vocabulary) {
        self.ids = ids
        self.vocabulary = vocabulary
    }

    /// The number of tokens.
    public var count: Int { ids.count }

    /// The corpus rendered back to text with ``Vocabulary/decode(_:)``.
    public var text: String { vocabulary.decode(ids) }

    // MARK: Loading files

    /// Loads a UTF-8 text file (or a pipe, see ``Corpus``) and builds its vocabulary.
    ///
    /// A leading UTF-8 byte-order mark is skipped and line ends are normalised.
    /// - Parameters:
    ///   - url: A file URL.
    ///   - level: The tokenisation level.
    ///   - maximumLineLength: The longest line accepted, in bytes (without the `"\n"`).
    ///   - maximumByteCount: The largest file or stream accepted, in bytes.
    /// - Throws: ``DataError/fileNotFound(path:)``, ``DataError/fileSystem(path:reason:)`` (a directory, a socket,
    ///   no permission, …), ``DataError/fileTooLarge(path:limit:)``, ``DataError/emptyFile(path:)``,
    ///   ``DataError/invalidUTF8(path:byteOffset:)``, ``DataError/lineTooLong(path:line:length:limit:)`` or
    ///   ``DataError/vocabularyTooLarge(limit:)``.
    public static func load(
        contentsOf url: URL, level: Vocabulary.Level, maximumLineLength: Int = Corpus.defaultMaximumLineLength,
        maximumByteCount: Int = Corpus.defaultMaximumByteCount
    ) throws(DataError) -> Corpus {
        let path = url.path
        let text = try readText(atPath: path, maximumLineLength: maximumLineLength, maximumByteCount: maximumByteCount)
        let (vocabulary, ids) = try Vocabulary.build(from: text, level: level, path: path)
        return Corpus(uncheckedIDs: ids, vocabulary: vocabulary)
    }

    /// Loads a UTF-8 text file and encodes it with an existing vocabulary.
    /// - Parameters:
    ///   - url: A file URL.
    ///   - vocabulary: The vocabulary to encode with.
    ///   - unknownTokens: What to do with tokens the vocabulary lacks (by default: `"<unk>"` if present, else error).
    ///   - maximumLineLength: The longest line accepted, in bytes (without the `"\n"`).
    ///   - maximumByteCount: The largest file or stream accepted, in bytes.
    /// - Throws: As ``load(contentsOf:level:maximumLineLength:maximumByteCount:)``, and
    ///   ``DataError/unknownToken(_:line:path:)``.
    public static func load(
        contentsOf url: URL, vocabulary: Vocabulary,
        unknownTokens: Vocabulary.UnknownTokenPolicy = .mapToUnknownIfPresent,
        maximumLineLength: Int = Corpus.defaultMaximumLineLength,
        maximumByteCount: Int = Corpus.defaultMaximumByteCount
    ) throws(DataError) -> Corpus {
        let path = url.path
        let text = try readText(atPath: path, maximumLineLength: maximumLineLength, maximumByteCount: maximumByteCount)
        let ids = try vocabulary.encode(text, unknownTokens: unknownTokens, path: path)
        return Corpus(uncheckedIDs: ids, vocabulary: vocabulary)
    }

    /// Loads a training, a validation and a test file: the vocabulary is built on the training file and the other
    /// two are encoded with it.
    ///
    /// Penn Treebank's validation and test files contain only training words, so they encode exactly. In other data
    /// a word missing from the training text becomes `"<unk>"` when the training text contains `"<unk>"`, and is
    /// otherwise an error naming the word, its file and line (with the default policy).
    /// - Parameters:
    ///   - train: The training file; defines the vocabulary.
    ///   - valid: The validation file.
    ///   - test: The test file.
    ///   - level: The tokenisation level.
    ///   - unknownTokens: What to do with validation or test tokens missing from the training vocabulary.
    ///   - maximumLineLength: The longest line accepted, in bytes (without the `"\n"`).
    ///   - maximumByteCount: The largest file or stream accepted, in bytes (each of the three).
    /// - Throws: Any error of ``load(contentsOf:vocabulary:unknownTokens:maximumLineLength:maximumByteCount:)``.
    public static func load(
        train: URL, valid: URL, test: URL, level: Vocabulary.Level,
        unknownTokens: Vocabulary.UnknownTokenPolicy = .mapToUnknownIfPresent,
        maximumLineLength: Int = Corpus.defaultMaximumLineLength,
        maximumByteCount: Int = Corpus.defaultMaximumByteCount
    ) throws(DataError) -> Splits {
        let trainCorpus = try load(
            contentsOf: train, level: level, maximumLineLength: maximumLineLength, maximumByteCount: maximumByteCount)
        let vocabulary = trainCorpus.vocabulary
        let validCorpus = try load(
            contentsOf: valid, vocabulary: vocabulary, unknownTokens: unknownTokens,
            maximumLineLength: maximumLineLength, maximumByteCount: maximumByteCount)
        let testCorpus = try load(
            contentsOf: test, vocabulary: vocabulary, unknownTokens: unknownTokens,
            maximumLineLength: maximumLineLength, maximumByteCount: maximumByteCount)
        return Splits(train: trainCorpus, valid: validCorpus, test: testCorpus)
    }

    /// Tokenises the bytes of a text with a new vocabulary, validating them exactly as a file is validated.
    /// - Parameters:
    ///   - bytes: UTF-8 text; a leading byte-order mark is skipped and line ends are normalised (see ``Corpus``).
    ///   - level: The tokenisation level.
    ///   - name: How errors refer to the text (in place of a file path).
    ///   - maximumLineLength: The longest line accepted, in bytes (without the `"\n"`).
    /// - Throws: ``DataError/emptyFile(path:)``, ``DataError/invalidUTF8(path:byteOffset:)``,
    ///   ``DataError/lineTooLong(path:line:length:limit:)`` or a vocabulary error.
    public init(utf8 bytes: [UInt8], level: Vocabulary.Level, name: String = "<memory>",
                maximumLineLength: Int = Corpus.defaultMaximumLineLength) throws(DataError) {
        let text = try Self.decodeText(bytes, path: name, maximumLineLength: maximumLineLength)
        let (vocabulary, ids) = try Vocabulary.build(from: text, level: level, path: name)
        self.init(uncheckedIDs: ids, vocabulary: vocabulary)
    }

    /// Reads a file and checks that it is non-empty, valid UTF-8 with lines no longer than `maximumLineLength`.
    static func readText(atPath path: String, maximumLineLength: Int, maximumByteCount: Int) throws(DataError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try RNNFileIO.readAll(atPath: path, maximumByteCount: maximumByteCount,
                                          maximumLineLength: maximumLineLength)
        } catch {
            if error.isNotFound { throw .fileNotFound(path: path) }
            if let line = error.overlongLine {
                throw .lineTooLong(path: path, line: line, length: maximumLineLength + 1, limit: maximumLineLength)
            }
            if let limit = error.exceededLimit { throw .fileTooLarge(path: path, limit: limit) }
            throw .fileSystem(path: path, reason: error.reason)
        }
        return try decodeText(bytes, path: path, maximumLineLength: maximumLineLength)
    }

    /// Checks that `bytes` are non-empty, valid UTF-8 with lines no longer than `maximumLineLength`, and returns
    /// them as text with normalised line ends.
    ///
    /// Byte offsets in errors count in `bytes`; line lengths are measured after normalisation (without `"\r"`).
    static func decodeText(_ bytes: [UInt8], path: String, maximumLineLength: Int) throws(DataError) -> String {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let start = bytes.starts(with: bom) ? 3 : 0
        guard bytes.count > start else { throw .emptyFile(path: path) }
        return try bytes.withUnsafeBufferPointer { (all) throws(DataError) -> String in
            let body = UnsafeBufferPointer(rebasing: all[start...])
            guard let text = String(validating: body, as: UTF8.self) else {
                throw .invalidUTF8(path: path, byteOffset: start + (UTF8Scan.firstInvalidOffset(in: body) ?? 0))
            }
            func checkLines(_ bytes: UnsafeBufferPointer<UInt8>) throws(DataError) {
                if let (line, length) = UTF8Scan.firstLine(longerThan: maximumLineLength, in: bytes) {
                    throw .lineTooLong(path: path, line: line, length: length, limit: maximumLineLength)
                }
            }
            guard let normalized = LineEnds.normalized(body) else {
                try checkLines(body)
                return text
            }
            return try normalized.withUnsafeBufferPointer { (bytes) throws(DataError) -> String in
                try checkLines(bytes)
                return String(decoding: bytes, as: UTF8.self)  // removing "\r" bytes keeps UTF-8 valid
            }
        }
    }
}

/// Byte-level scans over UTF-8 text.
enum UTF8Scan {
    /// Returns the offset of the first byte that starts an invalid UTF-8 sequence, or `nil` when all is valid.
    ///
    /// Rejects what the Unicode standard rejects: stray continuation bytes, truncated sequences, overlong forms,
    /// UTF-16 surrogates (U+D800...U+DFFF) and values above U+10FFFF.
    static func firstInvalidOffset(in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 {
                i += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            guard i + 1 < n, bytes[i + 1] >= low, bytes[i + 1] <= high else { return i }
            for k in 2..<length {
                guard i + k < n, bytes[i + k] & 0xC0 == 0x80 else { return i }
            }
            i += length
        }
        return nil
    }

    /// Returns the 1-based number and the length in bytes of the first line longer than `limit`, or `nil`.
    ///
    /// Lines end at `"\n"`, which is not counted in the length.
    static func firstLine(longerThan limit: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (line: Int, length: Int)? {
        guard let base = bytes.baseAddress, bytes.count > limit else { return nil }
        var line = 1
        var start = 0
        while start < bytes.count {
            let remaining = bytes.count - start
            let end: Int
            if let found = memchr(base + start, 0x0A, remaining) {
                end = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            } else {
                end = bytes.count
            }
            if end - start > limit { return (line, end - start) }
            line += 1
            start = end + 1
        }
        return nil
    }
}

/// The line-end normalisation of corpus text (see ``Corpus``).
enum LineEnds {
    /// `bytes` with each run of `"\r"` that precedes a `"\n"` removed and a run of `"\r"` that ends the text
    /// replaced by `"\n"`; `nil` when `bytes` holds no `"\r"` (nothing to change).
    static func normalized(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let base = bytes.baseAddress, memchr(base, 0x0D, bytes.count) != nil else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            guard byte == 0x0D else {
                result.append(byte)
                index += 1
                continue
            }
            var end = index
            while end < count && bytes[end] == 0x0D { end += 1 }
            if end == count {
                result.append(0x0A)  // the text ends in carriage returns: a cut-off CRLF line end
            } else if bytes[end] != 0x0A {
                result.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))  // not a line end
            }
            index = end
        }
        return result
    }

    /// `text` with its line ends normalised.
    static func normalized(_ text: String) -> String {
        guard text.utf8.contains(0x0D) else { return text }
        var copy = text
        copy.makeContiguousUTF8()
        return copy.utf8.withContiguousStorageIfAvailable { bytes in
            normalized(bytes).map { String(decoding: $0, as: UTF8.self) } ?? copy
        } ?? copy
    }
}
