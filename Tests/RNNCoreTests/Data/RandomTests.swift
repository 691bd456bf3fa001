import Testing
import RNNCore

@Suite("Random number generators")
struct RandomTests {
    @Test("SplitMix64 matches the reference outputs for seed 0")
    func splitMixReferenceVector() {
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(generator.next() == 0x06C4_5D18_8009_454F)
    }

    @Test("xoshiro256** matches the reference implementation from state {1, 2, 3, 4}")
    func xoshiroReferenceVector() {
        var generator = Xoshiro256StarStar(state: [1, 2, 3, 4])
        let expected: [UInt64] = [
            11520, 0, 1_509_978_240, 1_215_971_899_390_074_240, 1_216_172_134_540_287_360, 607_988_272_756_665_600,
        ]
        #expect((0..<expected.count).map { _ in generator.next() } == expected)
    }

    @Test("Seeding fills the state with four SplitMix64 outputs")
    func seedingUsesSplitMix() {
        var mixer = SplitMix64(seed: 42)
        let state = (0..<4).map { _ in mixer.next() }
        #expect(Xoshiro256StarStar(seed: 42).state == state)
        var generator = Xoshiro256StarStar(seed: 42)
        #expect(generator.nextUInt64() == 0x1578_0B2E_0C2E_C716)
        #expect(generator.nextUInt64() == 0x6104_D986_6D11_3A7E)
    }

    @Test("The same seed gives the same stream; different seeds differ", arguments: [0, 1, 12345, UInt64.max])
    func determinism(seed: UInt64) {
        var a = Xoshiro256StarStar(seed: seed)
        var b = Xoshiro256StarStar(seed: seed)
        var c = Xoshiro256StarStar(seed: seed &+ 1)
        let streamA = (0..<100).map { _ in a.next() }
        #expect(streamA == (0..<100).map { _ in b.next() })
        #expect(streamA != (0..<100).map { _ in c.next() })
    }

    @Test("nextFloat and nextDouble are uniform on [0, 1) and use the top bits of one output")
    func uniformFloats() {
        var generator = Xoshiro256StarStar(seed: 7)
        var copy = generator
        let x = generator.nextFloat()
        #expect(x == Float(copy.next() >> 40) * 0x1p-24)
        let y = generator.nextDouble()
        #expect(y == Double(copy.next() >> 11) * 0x1p-53)

        var sum = 0.0
        let n = 100_000
        for _ in 0..<n {
            let f = generator.nextFloat()
            #expect(f >= 0 && f < 1)
            sum += Double(f)
        }
        // Mean of U(0,1): 0.5 with standard error 1/sqrt(12 n) ≈ 0.0009.
        #expect(abs(sum / Double(n) - 0.5) < 0.005)
    }

    @Test("nextGaussian has mean 0, variance 1, and consumes exactly two outputs")
    func gaussian() {
        var generator = Xoshiro256StarStar(seed: 11)
        var reference = generator
        _ = generator.nextGaussian()
        _ = reference.next()
        _ = reference.next()
        #expect(generator == reference)

        let n = 200_000
        var sum = 0.0
        var sumOfSquares = 0.0
        var sumOfFourthPowers = 0.0
        for _ in 0..<n {
            let g = Double(generator.nextGaussian())
            #expect(g.isFinite)
            sum += g
            sumOfSquares += g * g
            sumOfFourthPowers += g * g * g * g
        }
        let mean = sum / Double(n)
        let variance = sumOfSquares / Double(n) - mean * mean
        #expect(abs(mean) < 0.015)  // standard error 0.0022
        #expect(abs(variance - 1) < 0.02)  // standard error 0.0032
        #expect(abs(sumOfFourthPowers / Double(n) - 3) < 0.15)  // normal kurtosis

        var shifted = Xoshiro256StarStar(seed: 3)
        var unit = Xoshiro256StarStar(seed: 3)
        let scaled = shifted.nextGaussian(mean: 2, standardDeviation: 0.5)
        #expect(abs(scaled - (2 + 0.5 * unit.nextGaussian())) < 1e-6)
    }

    @Test("nextInt(below:) stays in range", arguments: [1, 2, 3, 7, 10, 1000, 1 << 40, Int.max])
    func integerRange(bound: Int) {
        var generator = Xoshiro256StarStar(seed: UInt64(truncatingIfNeeded: bound))
        for _ in 0..<2000 {
            let value = generator.nextInt(below: bound)
            #expect(value >= 0 && value < bound)
        }
    }

    @Test("nextInt(below:) is uniform (chi-squared over 10 buckets)")
    func integerUniformity() {
        var generator = Xoshiro256StarStar(seed: 99)
        var counts = [Int](repeating: 0, count: 10)
        let n = 100_000
        for _ in 0..<n { counts[generator.nextInt(below: 10)] += 1 }
        let expected = Double(n) / 10
        let chiSquared = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chiSquared < 30)  // 9 degrees of freedom: P(χ² > 30) ≈ 0.0004
    }

    @Test("The generator drives the standard library's shuffle deterministically")
    func standardLibraryInterop() {
        var a = Xoshiro256StarStar(seed: 5)
        var b = Xoshiro256StarStar(seed: 5)
        #expect(Array(0..<50).shuffled(using: &a) == Array(0..<50).shuffled(using: &b))
    }
}
