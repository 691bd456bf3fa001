/// The streams of one data-parallel rank: `first ..< first + n` of a batch of `total` streams.
struct DropoutShard: Sendable, Equatable {
    /// The index of the rank's first stream in the whole batch.
    var first: Int
    /// N, the streams of the whole batch.
    var total: Int
}

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
    /// draw of the generator gives two such u. With a `shard`, `x` holds streams `first ..< first + N` (its first
    /// dimension) of a batch of `total` streams: the generator advances as if drawing the whole batch's mask and
    /// this site keeps its streams' part, so that K data-parallel ranks apply exactly the masks of one process.
    mutating func apply(_ x: Tensor, probability p: Float, generator: inout Xoshiro256StarStar,
                        shard: DropoutShard? = nil) -> Tensor {
        let keep = 1 - p, scale = 1 / keep
        let threshold = UInt32((Double(keep) * 16_777_216).rounded(.down))
        mask.prepare(like: x)
        output.prepare(like: x)
        let count = x.count
        let perStream = count / max(x.shape.first ?? 1, 1)
        let start = (shard?.first ?? 0) * perStream                 // the first element's index in the whole batch
        let total = shard.map { $0.total * perStream } ?? count      // the elements of the whole batch
        let m = mask.writePointer(), y = output.writePointer()
        withExtendedLifetime(x) {
            let v = x.readPointer
            for _ in 0..<(start / 2) { _ = generator.next() }   // the draws of the streams before this shard
            var g = start - start % 2
            while g < start + count {
                let bits = generator.next()
                for half in 0..<2 {
                    let k = g + half - start
                    if k >= 0 && k < count {
                        let u = UInt32(truncatingIfNeeded: bits >> (half == 0 ? 40 : 8)) & 0xFF_FFFF
                        let mk: Float = u < threshold ? scale : 0
                        m[k] = mk
                        y[k] = v[k] * mk
                    }
                }
                g += 2
            }
            for _ in (g / 2)..<((total + 1) / 2) { _ = generator.next() }  // the draws of the streams after it
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
