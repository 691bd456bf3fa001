import Foundation

/// How the next token is drawn from the model's distribution.
///
/// Each step works on the model's logits z for the next token, in this order:
/// 1. ``excluded`` ids are removed.
/// 2. Repetition penalty (CTRL, Keskar et al. 2019, as llama.cpp applies it): every id among the last
///    ``repetitionWindow`` tokens seen (prompt, fed text and generated tokens alike) has its logit divided by
///    ``repetitionPenalty`` when positive and multiplied by it otherwise, so it always becomes less likely.
///    Each such id is penalised once, however often it occurs.
/// 3. Temperature 0 takes the most likely remaining id (ties: the smaller id) and stops here.
/// 4. ``topK`` keeps the k most likely ids.
/// 5. The weights exp((z − max) / temperature) are formed; ``topP`` (nucleus sampling, Holtzman et al. 2019) keeps
///    the smallest set of most likely ids whose probability (renormalised after top-k) sums to at least p.
/// 6. One id is drawn in proportion to the remaining weights.
public struct SamplingOptions: Sendable, Equatable {
    /// Divides the logits before the softmax: below 1 sharpens, above 1 flattens; 0 always takes the most likely
    /// token (greedy).
    public var temperature: Double = 1
    /// Sample only among the k most likely tokens; nil for all.
    public var topK: Int? = nil
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability sums to at least p, in
    /// (0, 1]; 1 keeps every token.
    public var topP: Double = 1
    /// Divides positive logits and multiplies negative ones of recently seen tokens (≥ 1; 1 is off).
    public var repetitionPenalty: Double = 1
    /// How many of the most recent tokens (prompt included) the repetition penalty looks at; nil for all of them.
    /// 64 by default, as llama.cpp's `repeat_last_n`.
    public var repetitionWindow: Int? = 64
    /// Seed of the generator: the same seed, model and prompt give the same text.
    public var seed: UInt64 = 0
    /// Token ids never produced (for example `<unk>`).
    public var excluded: Set<Int32> = []

    /// Creates sampling options.
    public init(temperature: Double = 1, topK: Int? = nil, topP: Double = 1, repetitionPenalty: Double = 1,
                repetitionWindow: Int? = 64, seed: UInt64 = 0, excluded: Set<Int32> = []) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.repetitionPenalty = repetitionPenalty
        self.repetitionWindow = repetitionWindow
        self.seed = seed
        self.excluded = excluded
    }

    /// Throws ``RNNCoreError/invalidArgument(_:)`` naming the first option out of range: temperature a finite
    /// number ≥ 0, top-k ≥ 1, top-p in (0, 1], repetition penalty a finite number ≥ 1, repetition window ≥ 0.
    public func validate() throws(RNNCoreError) {
        guard temperature >= 0, temperature.isFinite else {
            throw .invalidArgument("temperature must be a finite number ≥ 0, got \(temperature)")
        }
        if let k = topK, k < 1 { throw .invalidArgument("top-k must be at least 1, got \(k)") }
        guard topP > 0, topP <= 1 else {
            throw .invalidArgument("top-p must lie in (0, 1] (1 keeps every token), got \(topP)")
        }
        guard repetitionPenalty >= 1, repetitionPenalty.isFinite else {
            throw .invalidArgument("repetition penalty must be a finite number ≥ 1 (1 is off), got \(repetitionPenalty)")
        }
        if let window = repetitionWindow, window < 0 {
            throw .invalidArgument("repetition window must be 0 or more tokens, got \(window)")
        }
    }

    /// The ids the repetition penalty applies to, given the tokens seen so far (oldest first).
    public func penalizedIDs(recent: [Int32]) -> Set<Int32> {
        guard repetitionPenalty != 1 else { return [] }
        let window = repetitionWindow.map { min($0, recent.count) } ?? recent.count
        return Set(recent.suffix(window))
    }

    /// `logits` with the repetition penalty applied to the ids in `recent`'s window: z / penalty for z > 0,
    /// z · penalty otherwise (computed in Double, rounded to Float).
    public func penalizedLogits(_ logits: [Float], recent: [Int32]) -> [Float] {
        var result = logits
        for id in penalizedIDs(recent: recent) where result.indices.contains(Int(id)) {
            let z = Double(result[Int(id)])
            result[Int(id)] = Float(z > 0 ? z / repetitionPenalty : z * repetitionPenalty)
        }
        return result
    }

    /// The distribution the next token is drawn from for these logits: every id that can be drawn with its
    /// probability (summing to 1), the most likely first (ties: the smaller id). Temperature 0 gives one id.
    public func distribution(logits: [Float], recent: [Int32] = []) -> [(id: Int32, probability: Double)] {
        let weighted = weightedCandidates(logits: penalizedLogits(logits, recent: recent))
        let total = weighted.reduce(0) { $0 + $1.weight }
        return weighted.map { (id: Int32($0.index), probability: $0.weight / total) }
            .sorted { ($0.probability, $1.id) > ($1.probability, $0.id) }
    }

    /// The candidates and their unnormalised weights (the best weighs exactly 1), after exclusion, temperature,
    /// top-k and top-p; in id order unless top-k or top-p sorted them by decreasing logit.
    func weightedCandidates(logits: [Float]) -> [(index: Int, weight: Double)] {
        var candidates = logits.indices.filter { !excluded.contains(Int32($0)) }
        if temperature == 0 {
            return [(candidates.max { (logits[$0], $1) < (logits[$1], $0) }!, 1)]  // ties: smaller id
        }
        let k = topK ?? candidates.count
        if k < candidates.count || topP < 1 {
            // Ties broken by the smaller id, so the choice is deterministic.
            candidates.sort { (logits[$0], $1) > (logits[$1], $0) }
            if k < candidates.count { candidates.removeLast(candidates.count - k) }
        }
        // Shift before dividing: the best candidate gets weight exp(0) = 1 even for a vanishing temperature.
        let top = candidates.map { Double(logits[$0]) }.max()!
        var weighted = candidates.map { (index: $0, weight: exp((Double(logits[$0]) - top) / temperature)) }
        if topP < 1 {
            let target = topP * weighted.reduce(0) { $0 + $1.weight }
            var mass = 0.0
            var kept = 0
            while kept < weighted.count {
                mass += weighted[kept].weight
                kept += 1
                if mass >= target { break }
            }
            weighted.removeLast(weighted.count - kept)
        }
        return weighted
    }
}

extension RNNLanguageModel {
    /// Feeds `prompt` from a zero state, then draws `count` tokens one at a time, feeding each back in.
    ///
    /// The same as the first `count` tokens of a ``GenerationSession`` fed `prompt`, and of
    /// ``tokens(prompt:count:options:)``.
    /// - Returns: the generated ids (the prompt not included).
    /// - Throws: ``RNNCoreError/kernel(_:operation:)`` with `nonFinite`, naming the token, when the model's logits
    ///   for it hold NaN or infinity (as evaluation does for a non-finite loss), besides the argument errors.
    public func generate(prompt: [Int32], count: Int, options: SamplingOptions = .init()) throws(RNNCoreError) -> [Int32] {
        guard !prompt.isEmpty else { throw .invalidArgument("generation needs a prompt of at least one token") }
        guard count >= 0 else { throw .invalidArgument("token count must not be negative") }
        var session = try GenerationSession(model: self, options: options)
        try session.feed(prompt)
        var generated: [Int32] = []
        generated.reserveCapacity(count)
        for _ in 0..<count { generated.append(try session.next(total: count)) }
        return generated
    }

    /// Draws one id from softmax(logits / temperature), restricted to the top k, the top p and to non-excluded
    /// ids (no repetition penalty: the caller applies it to `logits`).
    ///
    /// The weights are formed stably for any finite logits: exp((z − max) / temperature) in Double, so the best
    /// candidate weighs exactly 1 and none overflows, even for logits of ±3e38 or a row of 1e30 everywhere
    /// (which samples uniformly).
    static func sample(logits: [Float], options: SamplingOptions, rng: inout Xoshiro256StarStar) -> Int32 {
        let weighted = options.weightedCandidates(logits: logits)
        if options.temperature == 0 { return Int32(weighted[0].index) }
        var threshold = rng.nextDouble() * weighted.reduce(0) { $0 + $1.weight }
        for (index, weight) in weighted {
            threshold -= weight
            if threshold < 0 { return Int32(index) }
        }
        return Int32(weighted.last!.index)
    }
}

/// A running generation: the model's hidden state, the sampler's generator and the tokens seen so far, kept
/// between calls, so text can be fed and continued turn after turn (as `rnncore generate --interactive` does).
///
/// A session starts from a zero state. ``feed(_:)`` advances the model over given ids; ``next()`` draws one token
/// and feeds it back in (lazily: the model reads it at the following ``next()`` or ``feed(_:)``). The session
/// owns the model's state while it runs: do not use the model for anything else meanwhile. The model is a class,
/// so a copy of a session shares its hidden state: go on with one copy only.
public struct GenerationSession {
    /// The model that generates.
    public let model: RNNLanguageModel
    /// The sampling options.
    public let options: SamplingOptions
    /// Every token fed or generated so far, oldest first (what the repetition penalty looks at).
    public private(set) var history: [Int32] = []
    /// The number of tokens ``next()`` has drawn.
    public private(set) var generatedCount = 0

    private var rng: Xoshiro256StarStar
    private var row: [Float]? = nil
    private var pending: Int32? = nil

    /// Starts a session from a zero state.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for an option out of range (``SamplingOptions/validate()``)
    ///   or when every token is excluded.
    public init(model: RNNLanguageModel, options: SamplingOptions = .init()) throws(RNNCoreError) {
        try options.validate()
        let V = model.configuration.vocabularySize
        guard options.excluded.count(where: { (0..<Int32(V)).contains($0) }) < V else {
            throw .invalidArgument("every token is excluded")
        }
        self.model = model
        self.options = options
        self.rng = Xoshiro256StarStar(seed: options.seed)
        model.resetState()
    }

    /// Whether there is something to continue from: ``next()`` needs at least one fed token.
    public var canContinue: Bool { row != nil || pending != nil }

    /// Advances the model over `ids` (the last generated token first, if it is not read yet).
    public mutating func feed(_ ids: [Int32]) throws(RNNCoreError) {
        let V = model.configuration.vocabularySize
        if let bad = ids.first(where: { !(0..<Int32(V)).contains($0) }) {
            throw .invalidArgument("token id \(bad) is outside the vocabulary 0..<\(V)")
        }
        let input = (pending.map { [$0] } ?? []) + ids
        guard !input.isEmpty else { return }
        let logits = try model.logits(for: input, batchSize: 1)
        row = logits.withUnsafeBufferPointer { Array($0[(logits.count - V)...]) }
        history += ids
        pending = nil
    }

    /// Draws the next token and feeds it back in.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` when nothing was fed yet, or
    ///   ``RNNCoreError/kernel(_:operation:)`` with `nonFinite` when the logits hold NaN or infinity.
    public mutating func next() throws(RNNCoreError) -> Int32 {
        try next(total: nil)
    }

    mutating func next(total: Int?) throws(RNNCoreError) -> Int32 {
        if pending != nil { try feed([]) }
        guard let row else { throw .invalidArgument("generation needs a prompt of at least one token") }
        let step = generatedCount + 1
        if let bad = row.firstIndex(where: { !$0.isFinite }) {
            throw .kernel(.nonFinite, operation: "generating token \(step)\(total.map { " of \($0)" } ?? "") (the model's logits hold \(row[bad].isNaN ? "NaN" : "an infinity") at token id \(bad))")
        }
        let next = RNNLanguageModel.sample(logits: options.penalizedLogits(row, recent: history), options: options,
                                           rng: &rng)
        generatedCount += 1
        history.append(next)
        pending = next
        self.row = nil
        return next
    }
}
