/// An ordered set of tokens, each identified by its position: the mapping between text and the `Int32` token ids that
/// models consume.
///
/// Two levels of tokenisation are supported:
/// - ``Level/word``: tokens are separated by ASCII whitespace (space, tab, CR, VT, FF), and every line end becomes the
///   token `"<eos>"`, exactly as Penn Treebank language models do (PTB's 10 000 types include `<unk>` and `<eos>`).
///   A line is a run of text ended by `"\n"` or by the end of the text; a final `"\n"` does not start another line,
///   so `"a b\nc\n"` and `"a b\nc"` both give `a b <eos> c <eos>`, and a blank line gives a lone `<eos>` (the same rule
///   as Python's `for line in file: line.split() + ["<eos>"]`).
/// - ``Level/character``: tokens are Unicode `Character`s (extended grapheme clusters); `"\n"` is a normal character
///   and `"\r\n"` is one character.
///
/// A vocabulary tokenises the text it is given as it is. ``Corpus`` normalises line ends first (`"\r\n"` and a
/// final `"\r"` become `"\n"`), so a corpus with Windows line ends gives the same tokens as with Unix ones at both
/// levels, and `"\r\n"` never becomes a token of a vocabulary built from a corpus.
///
/// Errors quote a token with control characters escaped and at most its first 60 characters (then `…` and its size
/// in bytes), so a hostile token does not make a huge message.
///
/// Ids are assigned in order of first appearance when a vocabulary is built from text, so building is deterministic.
/// Tokens are compared as Swift compares `String`s, by Unicode canonical equivalence: `"caf\u{E9}"` and
/// `"cafe\u{301}"` are one token, stored in the spelling seen first. A vocabulary holds at most ``maximumCount``
/// tokens.
public struct Vocabulary: Sendable, Equatable, Codable {
    /// How text is cut into tokens.
    public enum Level: String, Sendable, Codable, CaseIterable {
        /// Whitespace-separated words, with `"<eos>"` at every line end.
        case word
        /// Unicode characters, `"\n"` included.
        case character
    }

    /// What ``Vocabulary/encode(_:unknownTokens:)`` does with a token that is not in the vocabulary.
    public enum UnknownTokenPolicy: Sendable, Equatable {
        /// `.mapTo("<unk>")` when the vocabulary contains ``Vocabulary/unknownToken``, otherwise ``reject``.
        case mapToUnknownIfPresent
        /// Throw ``DataError/unknownToken(_:line:path:)`` for the first unknown token.
        case reject
        /// Replace every unknown token by the given token, which must itself be in the vocabulary.
        case mapTo(String)
    }

    /// The token that marks a line end at the word level: `"<eos>"`.
    public static let endOfSentenceToken = "<eos>"

    /// The conventional token for out-of-vocabulary words: `"<unk>"`.
    public static let unknownToken = "<unk>"

    /// The largest number of tokens a vocabulary may hold: 1 000 000.
    ///
    /// Far above any vocabulary an RNN trained on the CPU can use (PTB has 10 000), it stops a mis-tokenised input
    /// (for example a binary file read as words) from growing an enormous softmax.
    public static let maximumCount = 1_000_000

    /// The tokenisation level.
    public let level: Level

    /// The tokens, in id order: `tokens[i]` has id `i`.
    public private(set) var tokens: [String]

    private var ids: [String: Int32]

    /// Creates a vocabulary from an explicit token list; `tokens[i]` gets id `i`.
    ///
    /// - Parameters:
    ///   - tokens: The tokens in id order. At the word level each must be non-empty and free of ASCII whitespace; at
    ///     the character level each must be exactly one `Character`, except ``unknownToken`` which is allowed too.
    ///   - level: The tokenisation level.
    /// - Throws: ``DataError/duplicateToken(_:)``, ``DataError/invalidToken(_:reason:)`` or
    ///   ``DataError/vocabularyTooLarge(limit:)`` (more than ``maximumCount`` tokens).
    public init(tokens: [String], level: Level) throws(DataError) {
        guard tokens.count <= Vocabulary.maximumCount else {
            throw .vocabularyTooLarge(limit: Vocabulary.maximumCount)
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() {
            try Vocabulary.validate(token, level: level)
            guard ids.updateValue(Int32(index), forKey: token) == nil else { throw .duplicateToken(token) }
        }
        self.level = level
        self.tokens = tokens
        self.ids = ids
    }

    /// Builds the vocabulary of `text`: every distinct token, with ids in order of first appearance.
    ///
    /// - Parameters:
    ///   - text: The text to tokenise.
    ///   - level: The tokenisation level.
    ///   - maximumCount: The largest vocabulary allowed; at most ``Vocabulary/maximumCount``.
    /// - Throws: ``DataError/vocabularyTooLarge(limit:)`` when `text` has more distinct tokens than `maximumCount`.
    public init(building text: String, level: Level, maximumCount: Int = Vocabulary.maximumCount) throws(DataError) {
        self = try Vocabulary.build(from: text, level: level, maximumCount: maximumCount).vocabulary
    }

    /// The number of tokens.
    public var count: Int { tokens.count }

    /// Returns the id of `token`, or `nil` when the vocabulary does not contain it.
    public func id(of token: String) -> Int32? {
        ids[token]
    }

    /// Returns whether the vocabulary contains `token`.
    public func contains(_ token: String) -> Bool {
        ids[token] != nil
    }

    /// Returns the token with id `id`, or `nil` when `id` is outside `0..<count`.
    public func token(at id: Int32) -> String? {
        tokens.indices.contains(Int(id)) ? tokens[Int(id)] : nil
    }

    /// Tokenises `text` and returns the token ids.
    ///
    /// - Parameters:
    ///   - text: The text to encode.
    ///   - unknownTokens: What to do with tokens the vocabulary lacks; by default they become `"<unk>"` when the
    ///     vocabulary has it, and are an error otherwise.
    /// - Throws: ``DataError/unknownToken(_:line:path:)`` naming the first unknown token and its 1-based line when
    ///   the policy rejects it, or ``DataError/invalidToken(_:reason:)`` when `.mapTo` names a missing token.
    public func encode(
        _ text: String, unknownTokens: UnknownTokenPolicy = .mapToUnknownIfPresent
    ) throws(DataError) -> [Int32] {
        var encoder = TokenEncoder(vocabulary: self, growthLimit: nil, unknownID: try replacementID(for: unknownTokens))
        return try encoder.encode(text)
    }

    /// Turns token ids back into text.
    ///
    /// At the word level tokens are joined by single spaces and `"<eos>"` is rendered as a line end, so
    /// `a b <eos> c` becomes `"a b\nc"`; at the character level the characters are concatenated. An id outside
    /// `0..<count` is rendered as U+FFFD (the replacement character).
    public func decode(_ ids: [Int32]) -> String {
        var text = ""
        text.reserveCapacity(ids.count * (level == .word ? 6 : 1))
        var atLineStart = true
        for id in ids {
            let token = self.token(at: id) ?? "\u{FFFD}"
            switch level {
            case .character:
                text += token
            case .word:
                if token == Vocabulary.endOfSentenceToken {
                    text += "\n"
                    atLineStart = true
                } else {
                    if !atLineStart { text += " " }
                    text += token
                    atLineStart = false
                }
            }
        }
        return text
    }

    // MARK: Equatable and Codable

    /// Returns whether two vocabularies have the same level and the same tokens in the same order.
    public static func == (lhs: Vocabulary, rhs: Vocabulary) -> Bool {
        lhs.level == rhs.level && lhs.tokens == rhs.tokens
    }

    private enum CodingKeys: String, CodingKey {
        case level, tokens
    }

    /// Decodes a vocabulary stored as `{"level": "word", "tokens": [...]}`, validating the tokens.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let level = try container.decode(Level.self, forKey: .level)
        let tokens = try container.decode([String].self, forKey: .tokens)
        do {
            self = try Vocabulary(tokens: tokens, level: level)
        } catch {
            throw DecodingError.dataCorruptedError(
                forKey: .tokens, in: container, debugDescription: error.description)
        }
    }

    /// Encodes the vocabulary as `{"level": "word", "tokens": [...]}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(level, forKey: .level)
        try container.encode(tokens, forKey: .tokens)
    }

    // MARK: Internals shared with Corpus

    /// Builds the vocabulary of `text` and encodes `text` with it, in one pass.
    static func build(
        from text: String, level: Level, maximumCount: Int = Vocabulary.maximumCount, path: String? = nil
    ) throws(DataError) -> (vocabulary: Vocabulary, ids: [Int32]) {
        var encoder = TokenEncoder(
            vocabulary: Vocabulary(uncheckedLevel: level),
            growthLimit: min(maximumCount, Vocabulary.maximumCount), unknownID: nil, path: path)
        let ids = try encoder.encode(text)
        return (encoder.vocabulary, ids)
    }

    /// Encodes `text`, naming `path` in errors.
    func encode(_ text: String, unknownTokens: UnknownTokenPolicy, path: String?) throws(DataError) -> [Int32] {
        var encoder = TokenEncoder(
            vocabulary: self, growthLimit: nil, unknownID: try replacementID(for: unknownTokens), path: path)
        return try encoder.encode(text)
    }

    /// A vocabulary of tokens known to be valid and distinct (a permutation of another vocabulary's).
    init(uncheckedTokens tokens: [String], level: Level) {
        self.level = level
        self.tokens = tokens
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, token) in tokens.enumerated() { ids[token] = Int32(i) }
        self.ids = ids
    }

    private init(uncheckedLevel level: Level) {
        self.level = level
        self.tokens = []
        self.ids = [:]
    }

    /// Appends `token` (known to be new) and returns its id.
    fileprivate mutating func appendUnchecked(_ token: String) -> Int32 {
        let id = Int32(tokens.count)
        tokens.append(token)
        ids[token] = id
        return id
    }

    /// The id unknown tokens map to under `policy`, or `nil` when they are rejected.
    private func replacementID(for policy: UnknownTokenPolicy) throws(DataError) -> Int32? {
        switch policy {
        case .reject:
            return nil
        case .mapToUnknownIfPresent:
            return id(of: Vocabulary.unknownToken)
        case .mapTo(let token):
            guard let id = id(of: token) else {
                throw .invalidToken(token, reason: "the replacement for unknown tokens is not in the vocabulary")
            }
            return id
        }
    }

    private static func validate(_ token: String, level: Level) throws(DataError) {
        switch level {
        case .word:
            if token.isEmpty { throw .invalidToken(token, reason: "a word token must not be empty") }
            if token.utf8.contains(where: isASCIIWhitespace) {
                throw .invalidToken(token, reason: "a word token must not contain whitespace")
            }
        case .character:
            if token.count != 1 && token != unknownToken {
                throw .invalidToken(token, reason: "a character token must be exactly one Character")
            }
        }
    }
}

/// Whether `byte` is ASCII whitespace: tab, line feed, vertical tab, form feed, carriage return or space.
@inline(__always)
func isASCIIWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
}

/// Tokenises text into ids against a vocabulary that may grow (building) or is fixed (encoding).
///
/// Works on the UTF-8 bytes directly: a `String` is created per word token only for the dictionary look-up (short
/// tokens are stored inline, without allocation), and pure-ASCII text is split into characters byte by byte.
private struct TokenEncoder {
    var vocabulary: Vocabulary
    /// When non-nil, unknown tokens are added, up to this many tokens in total.
    let growthLimit: Int?
    /// When fixed: the id unknown tokens map to, or nil to throw.
    let unknownID: Int32?
    var path: String? = nil

    mutating func encode(_ text: String) throws(DataError) -> [Int32] {
        var text = text
        text.makeContiguousUTF8()
        let result: Result<[Int32], DataError> = text.utf8.withContiguousStorageIfAvailable { bytes in
            do throws(DataError) {
                switch vocabulary.level {
                case .word: return .success(try encodeWords(bytes))
                case .character: return .success(try encodeCharacters(bytes, text: text))
                }
            } catch {
                return .failure(error)
            }
        } ?? .failure(.invalidUTF8(path: path, byteOffset: 0))  // unreachable: the text was made contiguous
        return try result.get()
    }

    private mutating func lookUp(_ token: String, line: Int) throws(DataError) -> Int32 {
        if let id = vocabulary.id(of: token) { return id }
        if let limit = growthLimit {
            guard vocabulary.count < limit else { throw .vocabularyTooLarge(limit: limit) }
            return vocabulary.appendUnchecked(token)
        }
        if let id = unknownID { return id }
        throw .unknownToken(token, line: line, path: path)
    }

    private mutating func encodeWords(_ bytes: UnsafeBufferPointer<UInt8>) throws(DataError) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(bytes.count / 4 + 1)
        var line = 1
        var endOfSentenceID: Int32? = vocabulary.id(of: Vocabulary.endOfSentenceToken)
        var index = 0
        let end = bytes.count
        while index < end {
            let byte = bytes[index]
            if byte == 0x0A {
                if endOfSentenceID == nil { endOfSentenceID = try lookUp(Vocabulary.endOfSentenceToken, line: line) }
                ids.append(endOfSentenceID!)
                line += 1
                index += 1
            } else if isASCIIWhitespace(byte) {
                index += 1
            } else {
                let start = index
                index += 1
                while index < end, !isASCIIWhitespace(bytes[index]) { index += 1 }
                let token = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                ids.append(try lookUp(token, line: line))
            }
        }
        // The last line has no "\n" but still ends: it gets its <eos> (unless the text is empty or ended by "\n").
        if end > 0 && bytes[end - 1] != 0x0A {
            if endOfSentenceID == nil { endOfSentenceID = try lookUp(Vocabulary.endOfSentenceToken, line: line) }
            ids.append(endOfSentenceID!)
        }
        return ids
    }

    private mutating func encodeCharacters(_ bytes: UnsafeBufferPointer<UInt8>, text: String) throws(DataError) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(bytes.count)
        var line = 1
        if !bytes.contains(where: { $0 >= 0x80 }) {
            // Pure ASCII: every byte is a Character, except "\r\n" which is one.
            var asciiIDs = [Int32](repeating: -1, count: 128)
            var crlfID: Int32? = nil
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A {
                    if crlfID == nil { crlfID = try lookUp("\r\n", line: line) }
                    ids.append(crlfID!)
                    line += 1
                    index += 2
                    continue
                }
                if asciiIDs[Int(byte)] < 0 {
                    asciiIDs[Int(byte)] = try lookUp(String(UnicodeScalar(byte)), line: line)
                }
                ids.append(asciiIDs[Int(byte)])
                if byte == 0x0A { line += 1 }
                index += 1
            }
            return ids
        }
        for character in text {
            ids.append(try lookUp(String(character), line: line))
            if character == "\n" || character == "\r\n" { line += 1 }
        }
        return ids
    }
}
