// Generation as an asynchronous sequence of tokens, and the text-level pieces a streaming front end needs: turning
// ids into text one token at a time, and stopping on a stop string.

extension RNNLanguageModel {
    /// The tokens ``generate(prompt:count:options:)`` returns, one at a time, as an `AsyncSequence`: each is drawn
    /// when the loop asks for it, so a caller can print it at once, or stop early by leaving the loop.
    ///
    /// ```swift
    /// for try await id in model.tokens(prompt: ids, count: 100, options: .init(temperature: 0.8, topP: 0.9)) {
    ///     print(vocabulary.token(at: id)!, terminator: " ")
    /// }
    /// ```
    /// The sequence starts from a zero state when iteration begins; it uses the model's state while it runs, so do
    /// not iterate two sequences of one model at once. Errors are those of ``generate(prompt:count:options:)``,
    /// thrown by the first step.
    public func tokens(prompt: [Int32], count: Int, options: SamplingOptions = .init()) -> GeneratedTokens {
        GeneratedTokens(model: self, prompt: prompt, count: count, options: options)
    }
}

/// The asynchronous sequence of generated token ids of ``RNNLanguageModel/tokens(prompt:count:options:)``.
public struct GeneratedTokens: AsyncSequence {
    public typealias Element = Int32
    public typealias Failure = RNNCoreError

    let model: RNNLanguageModel
    let prompt: [Int32]
    let count: Int
    let options: SamplingOptions

    public func makeAsyncIterator() -> Iterator {
        Iterator(sequence: self)
    }

    /// Draws the tokens one by one.
    public struct Iterator: AsyncIteratorProtocol {
        public typealias Element = Int32
        public typealias Failure = RNNCoreError

        let sequence: GeneratedTokens
        var session: GenerationSession? = nil
        var finished = false

        public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws(RNNCoreError) -> Int32? {
            try step()
        }

        public mutating func next() async throws(RNNCoreError) -> Int32? {
            try step()
        }

        private mutating func step() throws(RNNCoreError) -> Int32? {
            guard !finished else { return nil }
            do throws(RNNCoreError) {
                if session == nil {
                    guard !sequence.prompt.isEmpty else {
                        throw .invalidArgument("generation needs a prompt of at least one token")
                    }
                    guard sequence.count >= 0 else { throw .invalidArgument("token count must not be negative") }
                    var started = try GenerationSession(model: sequence.model, options: sequence.options)
                    try started.feed(sequence.prompt)
                    session = started
                }
                guard session!.generatedCount < sequence.count else {
                    finished = true
                    return nil
                }
                return try session!.next(total: sequence.count)
            } catch {
                finished = true
                throw error
            }
        }
    }
}

/// Turns generated ids into text one token at a time, so that the pieces joined are what
/// ``Vocabulary/decode(_:)`` gives for all the ids at once: at the word level a word is preceded by a space
/// unless it starts a line, and `<eos>` is a line end; at the character level each character is itself.
public struct IncrementalDecoder: Sendable {
    /// The vocabulary.
    public let vocabulary: Vocabulary
    /// Whether the next word starts a line (no space before it).
    public private(set) var atLineStart: Bool

    /// A decoder; `atLineStart` false makes the first word follow earlier text with a space.
    public init(vocabulary: Vocabulary, atLineStart: Bool = true) {
        self.vocabulary = vocabulary
        self.atLineStart = atLineStart
    }

    /// The text of `id` in context (U+FFFD for an id outside the vocabulary).
    public mutating func text(for id: Int32) -> String {
        let token = vocabulary.token(at: id) ?? "\u{FFFD}"
        switch vocabulary.level {
        case .character:
            return token
        case .word:
            if token == Vocabulary.endOfSentenceToken {
                atLineStart = true
                return "\n"
            }
            defer { atLineStart = false }
            return atLineStart ? token : " " + token
        }
    }
}

/// Stop strings: generation stops once the text generated so far ends with one of them.
///
/// Only generated text counts (not the prompt); the text that ends with the stop string is kept whole (the stop
/// string included), since a streaming front end has already shown it. An empty stop string is refused.
public struct StopStrings: Sendable, Equatable {
    /// The stop strings.
    public let strings: [String]
    private var tail = ""
    private let keep: Int

    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for an empty string.
    public init(_ strings: [String]) throws(RNNCoreError) {
        if strings.contains(where: \.isEmpty) { throw .invalidArgument("a stop string must not be empty") }
        self.strings = strings
        keep = strings.map(\.count).max() ?? 0
    }

    /// Appends the next piece of generated text; returns the stop string the text now ends with, if any.
    public mutating func append(_ piece: String) -> String? {
        guard keep > 0 else { return nil }
        tail += piece
        if tail.count > keep { tail = String(tail.suffix(keep)) }
        return strings.first { tail.hasSuffix($0) }
    }

    /// Forgets the text seen so far (a new turn).
    public mutating func reset() { tail = "" }
}
