#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// RNNCore's built-in corpus: sentences drawn from a seeded first-order Markov chain over a small invented vocabulary,
/// whose entropy rate — and so the best perplexity any model can reach — is known exactly.
///
/// A trained model's validation perplexity can be compared with ``truePerplexity``: the gap is what the model has
/// left to learn. The chain is sentence-like: the token `"<eos>"` ends every sentence (and renders as a line end), each
/// word is followed by one of a few dozen successors with Zipf-skewed probabilities, and sentences average about 25
/// tokens (Penn Treebank's average 21).
///
/// Construction (all from ``Configuration/seed`` through ``Xoshiro256StarStar``, so it is the same everywhere):
/// - ``Configuration/wordCount`` distinct pronounceable words (`"gus"`, `"trukai"`, …) plus `"<eos>"` (id 0).
/// - Each word `i` gets between ``Configuration/minimumSuccessors`` and ``Configuration/maximumSuccessors``
///   successors: `"<eos>"`, the next word `(i + 1) mod wordCount` (which makes every word reachable), and distinct
///   random words. They are shuffled into a random rank order and the successor of rank `r` (from 1) gets probability
///   proportional to `1 / r^s`, with `s` = ``Configuration/zipfExponent``.
/// - `"<eos>"` (a sentence start) gets ``Configuration/sentenceStartCount`` successors, ranked the same way.
///
/// Every state reaches every other, and `"<eos>"` returns in both two and three steps, so the chain is irreducible and
/// aperiodic: its stationary distribution π is unique, and the entropy rate is
/// `H = −Σᵢ πᵢ Σⱼ Pᵢⱼ ln Pᵢⱼ` nats per token. The default configuration has a true perplexity `exp(H)` of about 16.5 and
/// 251 tokens. Measured: `rnncore train` with its defaults (a 100-unit RNN, Adam, 10 epochs over 600 000 tokens,
/// about 30 seconds on 2 cores) reaches a test perplexity within about 11% of the true one.
public struct GrammarCorpus: Sendable {
    /// The parameters of the chain; the same configuration always gives the same chain.
    public struct Configuration: Sendable, Equatable, Codable {
        /// The number of words, not counting `"<eos>"`.
        public var wordCount: Int
        /// The fewest successors of a word (`"<eos>"` and the next word included); at least 2.
        public var minimumSuccessors: Int
        /// The most successors of a word; at least `minimumSuccessors`, at most `wordCount + 1`.
        public var maximumSuccessors: Int
        /// The number of words that can start a sentence (successors of `"<eos>"`); in `1...wordCount`.
        public var sentenceStartCount: Int
        /// The Zipf exponent `s` of the successor probabilities `∝ 1 / rank^s`; larger is more predictable.
        public var zipfExponent: Double
        /// The seed of the chain's structure (not of the generated text).
        public var seed: UInt64

        /// Creates a configuration; the defaults give a true perplexity of about 16.5 over 251 tokens.
        public init(
            wordCount: Int = 250, minimumSuccessors: Int = 12, maximumSuccessors: Int = 48,
            sentenceStartCount: Int = 60, zipfExponent: Double = 1.0, seed: UInt64 = 0x5EED_C0DE
        ) {
            self.wordCount = wordCount
            self.minimumSuccessors = minimumSuccessors
            self.maximumSuccessors = maximumSuccessors
            self.sentenceStartCount = sentenceStartCount
            self.zipfExponent = zipfExponent
            self.seed = seed
        }
    }

    /// The configuration the chain was built from.
    public let configuration: Configuration

    /// The tokens: `"<eos>"` (id 0) followed by the words (ids `1...wordCount`), at the word level.
    public let vocabulary: Vocabulary

    /// The stationary distribution π over token ids (sums to 1).
    public let stationaryDistribution: [Double]

    /// The exact entropy rate of the chain, in nats per token: `−Σᵢ πᵢ Σⱼ Pᵢⱼ ln Pᵢⱼ`.
    public let trueEntropyRate: Double

    /// The perplexity of the chain itself, `exp(trueEntropyRate)`: the lowest expected per-token perplexity any
    /// model can reach on its text.
    public var truePerplexity: Double { exp(trueEntropyRate) }

    /// For each token id, its successors' ids, in rank order.
    private let successorIDs: [[Int32]]
    /// For each token id, its successors' probabilities, in rank order (each row sums to 1).
    private let successorProbabilities: [[Double]]
    /// Running sums of `probabilities`, the last forced to exactly 1, for sampling.
    private let cumulative: [[Double]]

    /// Builds the chain for `configuration` and computes its stationary distribution and entropy rate.
    ///
    /// Invalid configurations (see the ranges on each ``Configuration`` property) are programming errors and trap.
    public init(configuration: Configuration = Configuration()) {
        let c = configuration
        precondition(c.wordCount >= 2, "wordCount must be at least 2")
        precondition(c.minimumSuccessors >= 2, "minimumSuccessors must be at least 2")
        precondition(c.maximumSuccessors >= c.minimumSuccessors, "maximumSuccessors must be >= minimumSuccessors")
        precondition(c.maximumSuccessors <= c.wordCount + 1, "maximumSuccessors must be <= wordCount + 1")
        precondition((1...c.wordCount).contains(c.sentenceStartCount), "sentenceStartCount must be in 1...wordCount")
        precondition(c.zipfExponent.isFinite && c.zipfExponent >= 0, "zipfExponent must be finite and >= 0")

        var random = Xoshiro256StarStar(seed: c.seed)
        let words = GrammarCorpus.makeWords(count: c.wordCount, random: &random)
        // Safe: the words are distinct, non-empty, whitespace-free and not "<eos>".
        vocabulary = try! Vocabulary(tokens: [Vocabulary.endOfSentenceToken] + words, level: .word)

        let tokenCount = c.wordCount + 1
        var successors: [[Int32]] = []
        successors.reserveCapacity(tokenCount)
        // Sentence starts: distinct random words.
        successors.append(GrammarCorpus.sample(c.sentenceStartCount, from: 1...c.wordCount, excluding: [], random: &random))
        for word in 1...c.wordCount {
            let count = c.minimumSuccessors + random.nextInt(below: c.maximumSuccessors - c.minimumSuccessors + 1)
            let next = Int32(word % c.wordCount + 1)
            var row: [Int32] = [0, next]
            row += GrammarCorpus.sample(count - 2, from: 1...c.wordCount, excluding: [next], random: &random)
            GrammarCorpus.shuffle(&row, random: &random)
            successors.append(row)
        }

        let probabilities = successors.map { row in GrammarCorpus.zipf(count: row.count, exponent: c.zipfExponent) }
        let cumulative = probabilities.map { row -> [Double] in
            var sum = 0.0
            var sums = row.map { p -> Double in
                sum += p
                return sum
            }
            sums[sums.count - 1] = 1
            return sums
        }
        let stationary = GrammarCorpus.stationaryDistribution(successors: successors, probabilities: probabilities)
        var entropy = 0.0
        for (i, row) in probabilities.enumerated() {
            var rowEntropy = 0.0
            for p in row where p > 0 { rowEntropy -= p * log(p) }
            entropy += stationary[i] * rowEntropy
        }

        self.configuration = c
        self.successorIDs = successors
        self.successorProbabilities = probabilities
        self.cumulative = cumulative
        self.stationaryDistribution = stationary
        self.trueEntropyRate = entropy
    }

    /// Returns the probability that `next` follows `previous` (both token ids of ``vocabulary``).
    public func probability(of next: Int32, after previous: Int32) -> Double {
        guard successorIDs.indices.contains(Int(previous)),
            let rank = successorIDs[Int(previous)].firstIndex(of: next)
        else { return 0 }
        return successorProbabilities[Int(previous)][rank]
    }

    /// Returns the successors of `token` with their probabilities, most likely first.
    public func successors(of token: Int32) -> [(id: Int32, probability: Double)] {
        guard successorIDs.indices.contains(Int(token)) else { return [] }
        return zip(successorIDs[Int(token)], successorProbabilities[Int(token)]).map { (id: $0.0, probability: $0.1) }
    }

    /// Draws `count` token ids from the chain, starting as after an `"<eos>"` (at the start of a sentence).
    /// - Parameters:
    ///   - count: The number of ids; the last one need not be `"<eos>"`.
    ///   - seed: The seed of the text; the same seed gives the same ids.
    public func generateIDs(count: Int, seed: UInt64) -> [Int32] {
        var random = Xoshiro256StarStar(seed: seed)
        var ids: [Int32] = []
        ids.reserveCapacity(count)
        var state = 0
        while ids.count < count {
            state = Int(nextToken(after: state, random: &random))
            ids.append(Int32(state))
        }
        return ids
    }

    /// Generates text of whole sentences, one per line, with at least `tokens` tokens (`"<eos>"` counted as one).
    ///
    /// Generation stops at the first sentence end at or after `tokens` tokens, so the text ends with `"\n"` and
    /// encoding it with ``vocabulary`` (or any word-level vocabulary) gives back exactly the drawn ids.
    /// - Parameters:
    ///   - tokens: The minimum number of tokens.
    ///   - seed: The seed of the text; the same seed gives the same text.
    public func generate(tokens: Int, seed: UInt64) -> String {
        vocabulary.decode(generateSentenceIDs(minimumCount: tokens, seed: seed))
    }

    /// Generates a training, a validation and a test corpus (whole sentences each) encoded with ``vocabulary``.
    ///
    /// The three texts come from independent streams derived from `seed`, so the validation and test perplexity of a
    /// perfect model equals ``truePerplexity`` up to sampling error.
    /// - Parameters:
    ///   - trainTokens: The minimum size of the training corpus.
    ///   - validTokens: The minimum size of the validation corpus.
    ///   - testTokens: The minimum size of the test corpus.
    ///   - seed: The seed of the texts.
    public func makeSplits(
        trainTokens: Int = 200_000, validTokens: Int = 20_000, testTokens: Int = 20_000, seed: UInt64 = 1
    ) -> Corpus.Splits {
        var seeds = SplitMix64(seed: seed)
        let train = generateSentenceIDs(minimumCount: trainTokens, seed: seeds.next())
        let valid = generateSentenceIDs(minimumCount: validTokens, seed: seeds.next())
        let test = generateSentenceIDs(minimumCount: testTokens, seed: seeds.next())
        return Corpus.Splits(
            train: Corpus(uncheckedIDs: train, vocabulary: vocabulary),
            valid: Corpus(uncheckedIDs: valid, vocabulary: vocabulary),
            test: Corpus(uncheckedIDs: test, vocabulary: vocabulary))
    }

    /// Returns the average negative log-likelihood, in nats per token, of `ids` under the true chain, each id
    /// conditioned on the one before (the first on `"<eos>"`); `+∞` when the chain cannot produce `ids`.
    ///
    /// On a long generated text this approaches ``trueEntropyRate``; it is the loss of a perfect model.
    public func crossEntropy(of ids: [Int32]) -> Double {
        guard !ids.isEmpty else { return 0 }
        var total = 0.0
        var previous: Int32 = 0
        for id in ids {
            let p = probability(of: id, after: previous)
            guard p > 0 else { return .infinity }
            total -= log(p)
            previous = id
        }
        return total / Double(ids.count)
    }

    // MARK: Construction helpers

    private func generateSentenceIDs(minimumCount: Int, seed: UInt64) -> [Int32] {
        var random = Xoshiro256StarStar(seed: seed)
        var ids: [Int32] = []
        ids.reserveCapacity(minimumCount + 64)
        var state = 0
        while ids.count < minimumCount || state != 0 {
            state = Int(nextToken(after: state, random: &random))
            ids.append(Int32(state))
        }
        return ids
    }

    /// Samples the successor of `state`: one uniform `Double`, then a linear scan of the row's running sums.
    private func nextToken(after state: Int, random: inout Xoshiro256StarStar) -> Int32 {
        let u = random.nextDouble()
        let sums = cumulative[state]
        var rank = 0
        while rank < sums.count - 1 && u >= sums[rank] { rank += 1 }
        return successorIDs[state][rank]
    }

    /// Probabilities `∝ 1 / r^s` for ranks `r = 1...count`, normalised.
    private static func zipf(count: Int, exponent: Double) -> [Double] {
        let weights = (1...count).map { exponent == 1 ? 1 / Double($0) : 1 / pow(Double($0), exponent) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    /// `count` distinct values of `range` not in `excluded`, in the order drawn.
    private static func sample(
        _ count: Int, from range: ClosedRange<Int>, excluding excluded: Set<Int32>, random: inout Xoshiro256StarStar
    ) -> [Int32] {
        var pool = range.map(Int32.init).filter { !excluded.contains($0) }
        precondition(count <= pool.count)
        // A partial Fisher–Yates shuffle: the first `count` slots end up a uniform sample.
        for i in 0..<count {
            let j = i + random.nextInt(below: pool.count - i)
            pool.swapAt(i, j)
        }
        return Array(pool.prefix(count))
    }

    /// Fisher–Yates with ``Xoshiro256StarStar/nextInt(below:)``, so the order is specified.
    private static func shuffle(_ values: inout [Int32], random: inout Xoshiro256StarStar) {
        guard values.count > 1 else { return }
        for i in stride(from: values.count - 1, to: 0, by: -1) {
            values.swapAt(i, random.nextInt(below: i + 1))
        }
    }

    /// `count` distinct pronounceable words of one to three syllables.
    private static func makeWords(count: Int, random: inout Xoshiro256StarStar) -> [String] {
        let onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "br", "tr"]
        let vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
        let codas = ["", "", "", "n", "r", "s", "k", "l"]
        var seen = Set<String>()
        var words: [String] = []
        words.reserveCapacity(count)
        while words.count < count {
            let syllables = 1 + random.nextInt(below: 3)
            var word = ""
            for _ in 0..<syllables {
                word += onsets[random.nextInt(below: onsets.count)]
                word += vowels[random.nextInt(below: vowels.count)]
            }
            word += codas[random.nextInt(below: codas.count)]
            if seen.insert(word).inserted { words.append(word) }
        }
        return words
    }

    /// The stationary distribution by power iteration from the uniform distribution, to a change below 1e-15.
    private static func stationaryDistribution(successors: [[Int32]], probabilities: [[Double]]) -> [Double] {
        let n = successors.count
        var pi = [Double](repeating: 1 / Double(n), count: n)
        var next = [Double](repeating: 0, count: n)
        for _ in 0..<100_000 {
            for j in 0..<n { next[j] = 0 }
            for i in 0..<n {
                let mass = pi[i]
                for (j, p) in zip(successors[i], probabilities[i]) { next[Int(j)] += mass * p }
            }
            let total = next.reduce(0, +)
            var change = 0.0
            for j in 0..<n {
                let value = next[j] / total
                change += abs(value - pi[j])
                pi[j] = value
            }
            if change < 1e-15 { break }
        }
        return pi
    }
}
