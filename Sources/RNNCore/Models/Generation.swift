import Foundation

/// How the next token is drawn from the model's distribution.
public struct SamplingOptions: Sendable, Equatable {
    /// Divides the logits before the softmax: below 1 sharpens, above 1 flattens; 0 always takes the most likely
    /// token (greedy).
    public var temperature: Double = 1
    /// Sample only among the k most likely tokens; nil for all.
    public var topK: Int? = nil
    /// Seed of the generator: the same seed, model and prompt give the same text.
    public var seed: UInt64 = 0
    /// Token ids never produced (for example `<unk>`).
    public var excluded: Set<Int32> = []

    /// Creates sampling options.
    public init(temperature: Double = 1, topK: Int? = nil, seed: UInt64 = 0, excluded: Set<Int32> = []) {
        self.temperature = temperature
        self.topK = topK
        self.seed = seed
        self.excluded = excluded
    }
}

extension RNNLanguageModel {
    /// Feeds `prompt` from a zero state, then draws `count` tokens one at a time, feeding each back in.
    /// - Returns: the generated ids (the prompt not included).
    /// - Throws: ``RNNCoreError/kernel(_:operation:)`` with `nonFinite`, naming the token, when the model's logits
    ///   for it hold NaN or infinity (as evaluation does for a non-finite loss), besides the argument errors.
    public func generate(prompt: [Int32], count: Int, options: SamplingOptions = .init()) throws(RNNCoreError) -> [Int32] {
        guard !prompt.isEmpty else { throw .invalidArgument("generation needs a prompt of at least one token") }
        guard count >= 0 else { throw .invalidArgument("token count must not be negative") }
        guard options.temperature >= 0, options.temperature.isFinite else {
            throw .invalidArgument("temperature must be a finite number ≥ 0, got \(options.temperature)")
        }
        if let k = options.topK, k < 1 { throw .invalidArgument("top-k must be at least 1, got \(k)") }
        let V = configuration.vocabularySize
        guard options.excluded.count(where: { (0..<Int32(V)).contains($0) }) < V else {
            throw .invalidArgument("every token is excluded")
        }
        var rng = Xoshiro256StarStar(seed: options.seed)
        resetState()
        var logits = try self.logits(for: prompt, batchSize: 1)
        var generated: [Int32] = []
        generated.reserveCapacity(count)
        for step in 0..<count {
            let row = logits.withUnsafeBufferPointer { Array($0[(logits.count - V)...]) }
            if let bad = row.firstIndex(where: { !$0.isFinite }) {
                throw .kernel(.nonFinite, operation: "generating token \(step + 1) of \(count) (the model's logits hold \(row[bad].isNaN ? "NaN" : "an infinity") at token id \(bad))")
            }
            let next = Self.sample(logits: row, options: options, rng: &rng)
            generated.append(next)
            logits = try self.logits(for: [next], batchSize: 1)
        }
        return generated
    }

    /// Draws one id from softmax(logits / temperature), restricted to the top k and to non-excluded ids.
    ///
    /// The weights are formed stably for any finite logits: exp((z − max) / temperature) in Double, so the best
    /// candidate weighs exactly 1 and none overflows, even for logits of ±3e38 or a row of 1e30 everywhere
    /// (which samples uniformly).
    static func sample(logits: [Float], options: SamplingOptions, rng: inout Xoshiro256StarStar) -> Int32 {
        var candidates = logits.indices.filter { !options.excluded.contains(Int32($0)) }
        if options.temperature == 0 {
            return Int32(candidates.max { (logits[$0], $1) < (logits[$1], $0) }!)  // ties: smaller id
        }
        if let k = options.topK, k < candidates.count {
            // Ties broken by the smaller id, so the choice is deterministic.
            candidates.sort { (logits[$0], $1) > (logits[$1], $0) }
            candidates.removeLast(candidates.count - k)
        }
        // Shift before dividing: the best candidate gets weight exp(0) = 1 even for a vanishing temperature.
        let top = candidates.map { Double(logits[$0]) }.max()!
        let weights = candidates.map { exp((Double(logits[$0]) - top) / options.temperature) }
        var threshold = rng.nextDouble() * weights.reduce(0, +)
        for (index, weight) in zip(candidates, weights) {
            threshold -= weight
            if threshold < 0 { return Int32(index) }
        }
        return Int32(candidates.last!)
    }
}
