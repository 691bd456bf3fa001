/// Inverted dropout at one place of a network: the mask of the last training forward and the masked copy,
/// kept in buffers reused from window to window.
///
/// A value is kept with probability 1 - p and then scaled by 1/(1 - p), so that the expected output equals the
/// input; backward multiplies the gradient by the same mask. Every dropout of RNNCore (between recurrent layers,
/// and a language model's embedding output and output-layer input) goes through this type, drawing from one
/// seeded generator.
struct DropoutSite {
    /// The mask of the last ``apply(_:probability:generator:)``: 1/(1-p) where a value was kept, 0 elsewhere.
    private(set) var mask = Tensor(zeros: [0])
    /// `x ⊙ mask` of the last ``apply(_:probability:generator:)``.
    private(set) var output = Tensor(zeros: [0])

    /// Draws a fresh mask shaped like `x` and returns `x ⊙ mask` (the site's own buffer).
    ///
    /// A value is kept when a 24-bit uniform u satisfies u < (1-p)·2²⁴ (exact for every float p); each 64-bit
    /// draw of the generator gives two such u.
    mutating func apply(_ x: Tensor, probability p: Float, generator: inout Xoshiro256StarStar) -> Tensor {
        let keep = 1 - p, scale = 1 / keep
        let threshold = UInt32((Double(keep) * 16_777_216).rounded(.down))
        mask.prepare(like: x)
        output.prepare(like: x)
        let count = x.count
        let m = mask.writePointer(), y = output.writePointer()
        withExtendedLifetime(x) {
            let v = x.readPointer
            var k = 0
            while k < count {
                let bits = generator.next()
                for half in 0..<2 where k < count {
                    let u = UInt32(truncatingIfNeeded: bits >> (half == 0 ? 40 : 8)) & 0xFF_FFFF
                    let mk: Float = u < threshold ? scale : 0
                    m[k] = mk
                    y[k] = v[k] * mk
                    k += 1
                }
            }
        }
        return output
    }

    /// `gradient ⊙= mask`: the backward of the last ``apply(_:probability:generator:)``.
    func backward(_ gradient: inout Tensor) {
        let n = gradient.count, g = gradient.writePointer()
        withExtendedLifetime(mask) {
            let m = mask.readPointer
            for k in 0..<n { g[k] *= m[k] }
        }
    }
}
