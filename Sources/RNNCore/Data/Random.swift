// Portable, seedable pseudo-random number generators.
//
// The same seed gives the same sequence on every platform and in every release of RNNCore: the algorithms and the
// way each helper consumes 64-bit outputs are part of the contract, because training and data generation promise
// bit-identical results for the same seed.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The SplitMix64 generator (Steele, Lea and Flood, 2014): one 64-bit word of state, used to expand a seed.
///
/// Every seed, zero included, is valid. RNNCore uses it to fill the state of ``Xoshiro256StarStar``, as the
/// xoshiro authors recommend; use ``Xoshiro256StarStar`` for everything else.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    /// The current state; advanced by `0x9E3779B97F4A7C15` per output.
    public private(set) var state: UInt64

    /// Creates a generator whose first output is derived from `seed`.
    /// - Parameter seed: Any 64-bit value.
    public init(seed: UInt64) {
        state = seed
    }

    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The xoshiro256** generator (Blackman and Vigna, 2018): RNNCore's generator for data, weights and sampling.
///
/// Fast, 256 bits of state, period 2²⁵⁶ − 1, and specified bit for bit, so a seed reproduces the same stream on every
/// platform. Each helper documents how many 64-bit outputs it consumes:
///
/// | helper | outputs consumed |
/// | --- | --- |
/// | ``nextUInt64()`` / `next()` | 1 |
/// | ``nextFloat()`` / ``nextDouble()`` | 1 |
/// | ``nextGaussian(mean:standardDeviation:)`` | 2 |
/// | ``nextInt(below:)`` | 1, rarely more (rejection sampling) |
///
/// It conforms to `RandomNumberGenerator`, so it also drives the standard library (`shuffle(using:)`), whose exact
/// use of the stream is not specified by the standard library; use the helpers above where reproducibility matters.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable, Hashable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Creates a generator whose state is filled by four outputs of ``SplitMix64`` seeded with `seed`.
    /// - Parameter seed: Any 64-bit value; different seeds give statistically independent streams.
    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
        // SplitMix64 never yields four zero words in a row, but keep the invariant explicit.
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// Creates a generator with the given raw state, as in the reference implementation's `s[0...3]`.
    ///
    /// - Parameter state: Exactly four words, not all zero (the all-zero state is a fixed point). Violating this
    ///   is a programming error and traps.
    public init(state: [UInt64]) {
        precondition(state.count == 4, "xoshiro256** needs exactly four state words")
        precondition(state.contains { $0 != 0 }, "the all-zero state is not allowed")
        s0 = state[0]
        s1 = state[1]
        s2 = state[2]
        s3 = state[3]
    }

    /// The raw state, four words, in the order of the reference implementation's `s[0...3]`.
    public var state: [UInt64] { [s0, s1, s2, s3] }

    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, by: 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, by: 45)
        return result
    }

    /// Returns the next 64 random bits; the same as `next()`, named for symmetry with the other helpers.
    public mutating func nextUInt64() -> UInt64 {
        next()
    }

    /// Returns a uniformly distributed `Float` in `[0, 1)` on the grid `k · 2⁻²⁴`, from the top 24 bits of one output.
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Returns a uniformly distributed `Double` in `[0, 1)` on the grid `k · 2⁻⁵³`, from the top 53 bits of one output.
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Returns a normally distributed `Float` by the Box–Muller transform, consuming exactly two outputs.
    ///
    /// With `u1 ∈ (0, 1]` and `u2 ∈ [0, 1)` from two consecutive outputs (53 bits each), the result is
    /// `mean + standardDeviation · √(−2 ln u1) · cos(2π u2)`, computed in `Double` and rounded once. The sine half
    /// of the pair is discarded so that every call consumes the same amount of the stream.
    /// - Parameters:
    ///   - mean: The mean of the distribution.
    ///   - standardDeviation: The standard deviation; must be finite and non-negative.
    public mutating func nextGaussian(mean: Float = 0, standardDeviation: Float = 1) -> Float {
        Float(nextGaussianDouble(mean: Double(mean), standardDeviation: Double(standardDeviation)))
    }

    /// Returns a normally distributed `Double`; the `Double` counterpart of ``nextGaussian(mean:standardDeviation:)``.
    /// - Parameters:
    ///   - mean: The mean of the distribution.
    ///   - standardDeviation: The standard deviation; must be finite and non-negative.
    public mutating func nextGaussianDouble(mean: Double = 0, standardDeviation: Double = 1) -> Double {
        let u1 = Double((next() >> 11) + 1) * 0x1p-53  // (0, 1]: log(u1) is finite
        let u2 = nextDouble()
        let radius = (-2 * log(u1)).squareRoot()
        return mean + standardDeviation * radius * cos(2 * Double.pi * u2)
    }

    /// Returns a uniformly distributed integer in `0..<bound`, without modulo bias.
    ///
    /// Uses Lemire's multiply-and-reject method: usually one output, more only with probability `bound / 2⁶⁴`.
    /// - Parameter bound: The exclusive upper bound; must be positive (a non-positive bound traps).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold {
                product = next().multipliedFullWidth(by: range)
            }
        }
        return Int(product.high)
    }

    @inline(__always)
    private func rotateLeft(_ x: UInt64, by k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 &- k))
    }
}
