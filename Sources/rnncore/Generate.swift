#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import Foundation
import RNNCore

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample text from a trained model.",
        discussion: """
        The text is written to standard output token by token as it is drawn (flushed after each), then a line \
        end unless it ends with one. Each step: repetition penalty on the tokens of the last --repetition-window (prompt included), then \
        temperature, --top-k, --top-p, and a draw seeded by --seed.

        --prompt - reads the prompt from standard input (up to its end; one final line end is dropped). Without \
        --prompt, standard input is not read (even when it is a pipe) and generation starts at a line start.

        --interactive reads standard input line by line: each line is fed to the model and continued (until \
        --count tokens or a --stop string), and the continuation printed on its own line; the hidden state is \
        kept from turn to turn (the last generated token is read before the next line). --prompt, if given, is \
        fed first and not continued. End of input ends the session. A line with unknown words is reported and \
        skipped.
        """)

    @Option(help: "A model written by rnncore train --out (or a training checkpoint).", completion: .file())
    var model: String
    @Option(parsing: .unconditional, help: "Text to start from (default: a line start); - reads it from standard input.")
    var prompt: String?
    @Option(parsing: .unconditional, help: "Number of tokens to generate (per line with --interactive).") var count: Int = 100
    @Option(parsing: .unconditional, help: "Sampling temperature (0 = always the most likely token).") var temperature: Double = 1
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Sample only among the k most likely tokens.") var topK: Int?
    @Option(name: .customLong("top-p"), parsing: .unconditional,
            help: "Nucleus sampling: only the smallest set of most likely tokens whose probability sums to at least p, in (0, 1]; 1 keeps all.")
    var topP: Double = 1
    @Option(name: .customLong("repetition-penalty"), parsing: .unconditional,
            help: "Divide the positive logits, multiply the negative ones, of tokens seen in the last --repetition-window tokens by this (≥ 1; 1 is off; 1.1 is a usual choice).")
    var repetitionPenalty: Double = 1
    @Option(name: .customLong("repetition-window"), parsing: .unconditional,
            help: "How many of the latest tokens (prompt and generated) the penalty looks at; 0 for all of them.")
    var repetitionWindow: Int = 64
    @Option(parsing: .unconditionalSingleValue, help: "Stop once the generated text ends with this text (kept in the output); may be repeated.")
    var stop: [String] = []
    @Flag(help: "Read lines from standard input and continue each, keeping the hidden state between them.")
    var interactive = false
    @Option(parsing: .unconditional, help: "Seed of the sampler.") var seed: UInt64 = 0

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be 0 or positive, got \(count)") }
        guard temperature >= 0, temperature.isFinite else {
            throw ValidationError("--temperature must be a finite number ≥ 0 (0 = always the most likely token), got \(temperature)")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        guard topP > 0, topP <= 1 else {
            throw ValidationError("--top-p must lie in (0, 1] (1 keeps every token), got \(topP)")
        }
        guard repetitionPenalty >= 1, repetitionPenalty.isFinite else {
            throw ValidationError("--repetition-penalty must be a finite number ≥ 1 (1 is off), got \(repetitionPenalty)")
        }
        guard repetitionWindow >= 0 else {
            throw ValidationError("--repetition-window must be 0 (every token) or more, got \(repetitionWindow)")
        }
        if stop.contains(where: \.isEmpty) { throw ValidationError("--stop must not be empty") }
        if interactive && prompt == "-" {
            throw ValidationError("--prompt - cannot be combined with --interactive, which reads standard input line by line")
        }
    }

    func run() throws {
        let (lm, vocabulary) = try RNNLanguageModel.load(from: URL(fileURLWithPath: model))
        var excluded: Set<Int32> = []
        if let unk = vocabulary.id(of: Vocabulary.unknownToken) { excluded.insert(unk) }
        let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP,
                                      repetitionPenalty: repetitionPenalty,
                                      repetitionWindow: repetitionWindow == 0 ? nil : repetitionWindow,
                                      seed: seed, excluded: excluded)
        var promptText = prompt
        if prompt == "-" {
            var text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }  // "\r\n" is one Character
            promptText = text
        }
        var session = try GenerationSession(model: lm, options: options)
        let stops = try StopStrings(stop)
        if interactive {
            if let promptText, !promptText.isEmpty { try session.feed(try Self.encodePrompt(promptText, vocabulary)) }
            try runInteractive(session: &session, vocabulary: vocabulary, stops: stops)
            return
        }
        let promptIDs: [Int32]
        if let promptText, !promptText.isEmpty {
            promptIDs = try Self.encodePrompt(promptText, vocabulary)
            guard !promptIDs.isEmpty else { throw ValidationError("the prompt holds no tokens") }
        } else {
            promptIDs = [Self.lineStart(vocabulary)]
        }
        try session.feed(promptIDs)
        let separator = vocabulary.level == .word ? " " : ""
        if let promptText, !promptText.isEmpty { Self.emit(promptText + separator) }
        try continueText(session: &session, vocabulary: vocabulary, stops: stops)
    }

    /// Draws up to --count tokens, writing each as it comes, until a stop string; then a line end.
    private func continueText(session: inout GenerationSession, vocabulary: Vocabulary, stops: StopStrings) throws {
        var decoder = IncrementalDecoder(vocabulary: vocabulary)
        var stops = stops
        var last = ""
        for _ in 0..<count {
            let piece = decoder.text(for: try session.next())
            Self.emit(piece)
            if !piece.isEmpty { last = piece }
            if stops.append(piece) != nil { break }
        }
        if !last.hasSuffix("\n") { Self.emit("\n") }
    }

    private func runInteractive(session: inout GenerationSession, vocabulary: Vocabulary, stops: StopStrings) throws {
        while let line = readLine(strippingNewline: true) {
            var ids: [Int32]
            do {
                ids = try Self.encodePrompt(line, vocabulary)
            } catch let error as ValidationError {
                writeError("Error: \(error.message)\n")
                Self.emit("\n")
                continue
            }
            if ids.isEmpty && !session.canContinue { ids = [Self.lineStart(vocabulary)] }
            try session.feed(ids)
            try continueText(session: &session, vocabulary: vocabulary, stops: stops)
        }
    }

    /// Where generation starts without a prompt: `<eos>` (a line start), else `"\n"`, else id 0.
    static func lineStart(_ vocabulary: Vocabulary) -> Int32 {
        vocabulary.id(of: Vocabulary.endOfSentenceToken) ?? vocabulary.id(of: "\n") ?? 0
    }

    /// Writes `text` to standard output at once (unbuffered: one write per token).
    static func emit(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }  // a closed output: nothing more to do
            bytes = bytes.dropFirst(written)
        }
    }

    /// The ids of a prompt: a word-level prompt is one line, so the `<eos>` that ends it is dropped (generation
    /// continues the line). Unknown tokens become `<unk>` when the vocabulary has it; otherwise every unknown one
    /// is named, with a few the vocabulary does have.
    static func encodePrompt(_ text: String, _ vocabulary: Vocabulary) throws -> [Int32] {
        if !vocabulary.contains(Vocabulary.unknownToken) {
            try requireKnownTokens(text, vocabulary)
        }
        var ids = try vocabulary.encode(text, unknownTokens: .mapToUnknownIfPresent)
        if vocabulary.level == .word, ids.last == vocabulary.id(of: Vocabulary.endOfSentenceToken) { ids.removeLast() }
        return ids
    }

    /// Throws "unknown words in the prompt: the, cat; the vocabulary has 27 tokens, for example: dog, runs, …".
    static func requireKnownTokens(_ text: String, _ vocabulary: Vocabulary) throws {
        let isWord = vocabulary.level == .word
        let pieces: [String] = isWord
            ? text.split(whereSeparator: { $0.isASCII && $0.isWhitespace }).map(String.init)
            : text.map(String.init)
        var unknown: [String] = []
        for piece in pieces where !vocabulary.contains(piece) && !unknown.contains(piece) { unknown.append(piece) }
        guard !unknown.isEmpty else { return }
        func show(_ token: String) -> String {
            isWord ? Self.clipped(token) : String(reflecting: token)
        }
        let listed = unknown.prefix(20).map(show).joined(separator: ", ")
            + (unknown.count > 20 ? ", … (\(unknown.count - 20) more)" : "")
        let examples = vocabulary.tokens.filter { $0 != Vocabulary.endOfSentenceToken }
        let shown = examples.prefix(8).map(show).joined(separator: ", ") + (examples.count > 8 ? ", …" : "")
        let noun = isWord ? "words" : "characters"
        throw ValidationError("unknown \(noun) in the prompt: \(listed); the vocabulary has \(vocabulary.count) tokens, for example: \(shown)")
    }

    /// A token of at most 40 characters, control characters escaped.
    static func clipped(_ token: String) -> String {
        let escaped = token.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
        return escaped.count > 40 ? String(escaped.prefix(40)) + "…" : escaped
    }
}
