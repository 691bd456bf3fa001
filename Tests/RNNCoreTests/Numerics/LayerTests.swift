// Forward and backward of every layer against the double-precision references in Reference.swift.
//
// Tolerances (u = 2⁻²⁴ ≈ 6e-8, the float32 unit roundoff; the references see the same float inputs, widened
// exactly, so every difference is the library's rounding):
// - `linear`, 1e-5 + 1e-5·|ref|: a float sum of K terms of magnitude ≤ 1 has an error that grows like √K·u·Σ|terms|
//   on average (K·u·Σ|terms| at worst). Our sums have K ≤ 32 terms (D + H ≤ 24 in a dot product, M = N·T ≤ 28
//   rows in a weight gradient), so errors of ~1e-6 are expected. Observed: max abs 1.4e-6, at most 4% of the
//   tolerance (affine dW).
// - `recurrent`, 1e-5 + 2e-5·|ref|: the RNN adds tanhf (≤ 2 ulp) and carries errors through T ≤ 7 steps, each
//   multiplying them by at most ‖Wh‖·max tanh′ (weights are drawn in ±0.5 to keep that near 1). Observed: max abs
//   2e-6 (dWh), at most ~15% of the tolerance.
// - `loss`, 2e-7 + 1e-7·|ref|: the loss is accumulated in double from expf values; each expf is within 1 ulp, so
//   every row's log-sum-exp is within ≈ u of exact and so is their mean; 2e-7 ≈ 3u. Observed: 5e-9.
// - `probability`, 2e-7 + 2e-6·|ref|: a softmax probability or gradient is a float product of an expf value and
//   a rounded reciprocal (≤ 3 roundings, 3u relative), minus a float onehot·scale. Observed: 3e-8.
// - `.exact`: copies (embedding lookup), zeroed rows, and repeated identical kernel calls.

import RNNCore
import Testing

@Suite("Numerics: layers against double references")
struct NumericLayerTests {
    /// N streams, T steps, D input size, H hidden (or affine output) size, V vocabulary size.
    struct Shape: Sendable, CustomTestStringConvertible, CustomStringConvertible {
        let N: Int, T: Int, D: Int, H: Int, V: Int
        var M: Int { N * T }
        var description: String { "N\(N) T\(T) D\(D) H\(H) V\(V)" }
        var testDescription: String { description }
    }

    static let shapes: [Shape] = [
        Shape(N: 1, T: 1, D: 1, H: 1, V: 2),
        Shape(N: 1, T: 4, D: 3, H: 5, V: 2),
        Shape(N: 3, T: 1, D: 6, H: 2, V: 7),
        Shape(N: 2, T: 3, D: 4, H: 5, V: 7),
        Shape(N: 4, T: 7, D: 8, H: 16, V: 11),
    ]

    /// Sums of ≤ 32 float products (see the file comment).
    static let linear = NumericsTolerance(absolute: 1e-5, relative: 1e-5)
    /// The tanh recurrence over T ≤ 7 steps (see the file comment).
    static let recurrent = NumericsTolerance(absolute: 1e-5, relative: 2e-5)
    /// A mean cross-entropy accumulated in double from expf values.
    static let loss = NumericsTolerance(absolute: 2e-7, relative: 1e-7)
    /// Softmax probabilities and cross-entropy gradients: a few float roundings per element.
    static let probability = NumericsTolerance(absolute: 2e-7, relative: 2e-6)

    // MARK: Embedding

    @Test(arguments: NumericLayerTests.shapes)
    func embeddingForwardAndBackward(_ s: Shape) throws {
        var data = NumericsData(seed: 11)
        let table = data.tensor([s.V, s.H])
        let ids = data.ids(s.M, below: s.V)
        let layer = try Embedding(weight: table)
        let out = try layer.forward(ids)
        #expect(out.shape == [s.M, s.H])
        // A lookup copies floats: bit-for-bit.
        expectApproximatelyEqual(out, NumericsReference.embedding(ids: ids, table: table.widenedScalars, V: s.V, D: s.H),
                                 tolerance: .exact, "embedding forward \(s)")

        let dout = data.tensor([s.N, s.T, s.H])  // any shape with M·D elements is accepted
        try layer.backward(dout)
        let expected = NumericsReference.embeddingBackward(dout: dout.widenedScalars, ids: ids, V: s.V, D: s.H)
        expectApproximatelyEqual(layer.weight.gradient, expected, tolerance: Self.linear, "embedding dW \(s)")

        // Gradients accumulate: a second backward doubles them.
        try layer.backward(dout)
        expectApproximatelyEqual(layer.weight.gradient, expected.map { 2 * $0 }, tolerance: Self.linear,
                                 "embedding dW after two backward calls \(s)")
        layer.parameters.zeroGradients()
        expectApproximatelyEqual(layer.weight.gradient, [Double](repeating: 0, count: s.V * s.H),
                                 tolerance: .exact, "embedding dW after zeroGradients")
    }

    @Test func embeddingRejectsBadInput() throws {
        expectRNNCoreError(.shapeMismatch) { _ = try Embedding(weight: Tensor(zeros: [6])) }
        let layer = try Embedding(weight: Tensor(zeros: [4, 3]))
        expectRNNCoreError(.invalidState) { try layer.backward(Tensor(zeros: [1, 3])) }
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try layer.forward([0, 4]) }
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try layer.forward([-1]) }
        expectRNNCoreError(.invalidArgument) { _ = try layer.forward([]) }
        _ = try layer.forward([0, 1, 3])
        expectRNNCoreError(.shapeMismatch) { try layer.backward(Tensor(zeros: [2, 3])) }
    }

    // MARK: Affine

    @Test(arguments: NumericLayerTests.shapes, [true, false])
    func affineForwardAndBackward(_ s: Shape, withBias: Bool) throws {
        var data = NumericsData(seed: 12)
        let (D, O) = (s.D, s.H)
        let w = data.tensor([D, O])
        let b = withBias ? data.tensor([O]) : nil
        let layer = try Affine(weight: w, bias: b)
        #expect(layer.parameters.count == (withBias ? 2 : 1))
        let x = data.tensor([s.N, s.T, D])
        let y = try layer.forward(x)
        #expect(y.shape == [s.N, s.T, O])
        expectApproximatelyEqual(y, NumericsReference.affine(x: x.widenedScalars, w: w.widenedScalars, b: b?.widenedScalars,
                                                             M: s.M, D: D, O: O),
                                 tolerance: Self.linear, "affine y \(s) bias \(withBias)")

        let dy = data.tensor([s.N, s.T, O])
        let ref = NumericsReference.affineBackward(dy: dy.widenedScalars, x: x.widenedScalars, w: w.widenedScalars,
                                                   M: s.M, D: D, O: O)
        for call in 1...2 {  // dx is overwritten, dW and db accumulate
            let dx = try layer.backward(dy)
            #expect(dx.shape == x.shape)
            expectApproximatelyEqual(dx, ref.dx, tolerance: Self.linear, "affine dx \(s), call \(call)")
            expectApproximatelyEqual(layer.weight.gradient, ref.dw.map { Double(call) * $0 }, tolerance: Self.linear,
                                     "affine dW \(s), call \(call)")
            if let bias = layer.bias {
                expectApproximatelyEqual(bias.gradient, ref.db.map { Double(call) * $0 }, tolerance: Self.linear,
                                         "affine db \(s), call \(call)")
            }
        }
    }

    @Test func affineRejectsBadInput() throws {
        expectRNNCoreError(.shapeMismatch) { _ = try Affine(weight: Tensor(zeros: [3]), bias: nil) }
        expectRNNCoreError(.shapeMismatch) { _ = try Affine(weight: Tensor(zeros: [3, 2]), bias: Tensor(zeros: [3])) }
        let layer = try Affine(weight: Tensor(zeros: [3, 2]), bias: Tensor(zeros: [2]))
        expectRNNCoreError(.invalidState) { _ = try layer.backward(Tensor(zeros: [1, 2])) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.forward(Tensor(zeros: [4, 2])) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.forward(Tensor(zeros: [0, 3])) }
        _ = try layer.forward(Tensor(zeros: [4, 3]))
        expectRNNCoreError(.shapeMismatch) { _ = try layer.backward(Tensor(zeros: [4, 3])) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.backward(Tensor(zeros: [2, 2])) }
    }

    // MARK: RNN

    /// Weights for an RNN of shape `s`, drawn in ±0.5 (biases ±0.1) so that the recurrence is neither saturated
    /// nor vanishing.
    static func rnnWeights(_ s: Shape, _ data: inout NumericsData) -> (wx: Tensor, wh: Tensor, b: Tensor) {
        (data.tensor([s.D, s.H], scale: 0.5), data.tensor([s.H, s.H], scale: 0.5), data.tensor([s.H], scale: 0.1))
    }

    @Test(arguments: NumericLayerTests.shapes)
    func rnnStatefulOverTwoWindows(_ s: Shape) throws {
        let (N, T, D, H) = (s.N, s.T, s.D, s.H)
        var data = NumericsData(seed: 13)
        let (wx, wh, b) = Self.rnnWeights(s, &data)
        let layer = try RecurrentLayer(cell: .rnn, wx: wx, wh: wh, b: b)
        let (w, u, c) = (wx.widenedScalars, wh.widenedScalars, b.widenedScalars)
        let (xs1, xs2) = (data.tensor([N, T, D]), data.tensor([N, T, D]))
        let (dhs1, dhs2, dhLast) = (data.tensor([N, T, H]), data.tensor([N, T, H]), data.tensor([N, H]))

        // Window 1 starts from zeros.
        let hs1 = try layer.forward(xs1)
        let ref1 = NumericsReference.rnnForward(xs: xs1.widenedScalars, h0: nil, wx: w, wh: u, b: c, N: N, T: T, D: D, H: H)
        expectApproximatelyEqual(hs1, ref1, tolerance: Self.recurrent, "rnn hs window 1 \(s)")
        let h1 = NumericsReference.lastState(hs: ref1, N: N, T: T, H: H)
        let state1 = try #require(layer.carriedState.first)
        #expect(state1.shape == [N, H])
        expectApproximatelyEqual(state1, h1, tolerance: Self.recurrent, "rnn state after window 1 \(s)")
        let dxs1 = try layer.backward(dhs1)
        let back1 = NumericsReference.rnnBackward(dhs: dhs1.widenedScalars, dhLast: nil, xs: xs1.widenedScalars, h0: nil,
                                                  hs: ref1, wx: w, wh: u, N: N, T: T, D: D, H: H)
        expectApproximatelyEqual(dxs1, back1.dxs, tolerance: Self.recurrent, "rnn dxs window 1 \(s)")
        expectApproximatelyEqual(try #require(layer.initialStateGradients.first), back1.dh0, tolerance: Self.recurrent,
                                 "rnn dh0 window 1 \(s)")

        // Window 2 starts from window 1's last state; backward takes an extra gradient into the last state.
        let hs2 = try layer.forward(xs2)
        let ref2 = NumericsReference.rnnForward(xs: xs2.widenedScalars, h0: h1, wx: w, wh: u, b: c, N: N, T: T, D: D, H: H)
        expectApproximatelyEqual(hs2, ref2, tolerance: Self.recurrent, "rnn hs window 2 \(s)")
        let dxs2 = try layer.backward(dhs2, finalStateGradient: [dhLast])
        let back2 = NumericsReference.rnnBackward(dhs: dhs2.widenedScalars, dhLast: dhLast.widenedScalars,
                                                  xs: xs2.widenedScalars, h0: h1, hs: ref2, wx: w, wh: u,
                                                  N: N, T: T, D: D, H: H)
        expectApproximatelyEqual(dxs2, back2.dxs, tolerance: Self.recurrent, "rnn dxs window 2 \(s)")
        expectApproximatelyEqual(try #require(layer.initialStateGradients.first), back2.dh0, tolerance: Self.recurrent,
                                 "rnn dh0 window 2 \(s)")

        // Parameter gradients are the sum over both windows.
        let sum = { (a: [Double], b: [Double]) in zip(a, b).map { $0 + $1 } }
        expectApproximatelyEqual(layer.wx.gradient, sum(back1.dwx, back2.dwx), tolerance: Self.recurrent, "rnn dWx \(s)")
        expectApproximatelyEqual(layer.wh.gradient, sum(back1.dwh, back2.dwh), tolerance: Self.recurrent, "rnn dWh \(s)")
        expectApproximatelyEqual(layer.b.gradient, sum(back1.db, back2.db), tolerance: Self.recurrent, "rnn db \(s)")
    }

    @Test(arguments: NumericLayerTests.shapes)
    func rnnGradientsAccumulateOverBackwardCalls(_ s: Shape) throws {
        var data = NumericsData(seed: 14)
        let (wx, wh, b) = Self.rnnWeights(s, &data)
        let layer = try RecurrentLayer(cell: .rnn, wx: wx, wh: wh, b: b)
        let xs = data.tensor([s.N, s.T, s.D])
        let dhs = data.tensor([s.N, s.T, s.H])
        _ = try layer.forward(xs)
        let dxs1 = try layer.backward(dhs)
        let once = layer.parameters.map(\.gradient.widenedScalars)
        let dxs2 = try layer.backward(dhs)
        // The same kernel on the same inputs: the second dxs is the first, bit for bit. Each gradient doubles, but
        // db adds the rows of the second call one at a time onto the first sum, so doubling is only approximate.
        expectApproximatelyEqual(dxs2, dxs1.widenedScalars, tolerance: .exact, "rnn dxs is overwritten \(s)")
        for (p, g) in zip(layer.parameters, once) {
            expectApproximatelyEqual(p.gradient, g.map { 2 * $0 }, tolerance: Self.linear, "rnn \(p.name) doubles \(s)")
        }
    }

    @Test func rnnStateHandling() throws {
        let s = Shape(N: 2, T: 3, D: 4, H: 5, V: 7)
        var data = NumericsData(seed: 15)
        let (wx, wh, b) = Self.rnnWeights(s, &data)
        let (w, u, c) = (wx.widenedScalars, wh.widenedScalars, b.widenedScalars)
        let xs = data.tensor([2, 3, 4])
        let fromZeros = NumericsReference.rnnForward(xs: xs.widenedScalars, h0: nil, wx: w, wh: u, b: c, N: 2, T: 3, D: 4, H: 5)

        // Stateless: every window starts from zeros.
        let stateless = try RecurrentLayer(cell: .rnn, wx: wx, wh: wh, b: b, stateful: false)
        _ = try stateless.forward(xs)
        expectApproximatelyEqual(try stateless.forward(xs), fromZeros, tolerance: Self.recurrent, "stateless window 2")

        // setCarriedState sets the next window's h0; resetState goes back to zeros.
        let layer = try RecurrentLayer(cell: .rnn, wx: wx, wh: wh, b: b)
        let h0 = data.tensor([2, 5])
        try layer.setCarriedState([h0])
        let fromH0 = NumericsReference.rnnForward(xs: xs.widenedScalars, h0: h0.widenedScalars, wx: w, wh: u, b: c,
                                                  N: 2, T: 3, D: 4, H: 5)
        expectApproximatelyEqual(try layer.forward(xs), fromH0, tolerance: Self.recurrent, "forward after setState")
        layer.resetState()
        #expect(layer.carriedState.first == nil)
        expectApproximatelyEqual(try layer.forward(xs), fromZeros, tolerance: Self.recurrent, "forward after reset")

        // A different batch size starts new streams from zeros.
        let one = try xs.reshaped([1, 6, 4])
        let single = NumericsReference.rnnForward(xs: one.widenedScalars, h0: nil, wx: w, wh: u, b: c, N: 1, T: 6, D: 4, H: 5)
        expectApproximatelyEqual(try layer.forward(one), single, tolerance: Self.recurrent, "forward after batch change")
    }

    @Test func rnnRejectsBadInput() throws {
        expectRNNCoreError(.shapeMismatch) { _ = try RecurrentLayer(cell: .rnn, wx: Tensor(zeros: [3]), wh: Tensor(zeros: [2, 2]), b: Tensor(zeros: [2])) }
        expectRNNCoreError(.shapeMismatch) { _ = try RecurrentLayer(cell: .rnn, wx: Tensor(zeros: [3, 2]), wh: Tensor(zeros: [3, 2]), b: Tensor(zeros: [2])) }
        expectRNNCoreError(.shapeMismatch) { _ = try RecurrentLayer(cell: .rnn, wx: Tensor(zeros: [3, 2]), wh: Tensor(zeros: [2, 2]), b: Tensor(zeros: [3])) }
        let layer = try RecurrentLayer(cell: .rnn, wx: Tensor(zeros: [3, 2]), wh: Tensor(zeros: [2, 2]), b: Tensor(zeros: [2]))
        expectRNNCoreError(.invalidState) { _ = try layer.backward(Tensor(zeros: [1, 1, 2])) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.forward(Tensor(zeros: [4, 3])) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.forward(Tensor(zeros: [1, 4, 2])) }
        expectRNNCoreError(.shapeMismatch) { try layer.setState(Tensor(zeros: [1, 3])) }
        _ = try layer.forward(Tensor(zeros: [2, 4, 3]))
        expectRNNCoreError(.shapeMismatch) { _ = try layer.backward(Tensor(zeros: [2, 3, 2])) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.backward(Tensor(zeros: [2, 4, 2]), finalStateGradient: [Tensor(zeros: [1, 2])]) }
    }

    // MARK: Softmax cross-entropy

    @Test(arguments: NumericLayerTests.shapes)
    func softmaxCrossEntropyForwardBackwardAndInPlace(_ s: Shape) throws {
        var data = NumericsData(seed: 16)
        let logits = data.tensor([s.N, s.T, s.V], scale: 3)
        let targets = data.ids(s.M, below: s.V)
        let ref = NumericsReference.softmaxCrossEntropy(logits: logits.widenedScalars, targets: targets, V: s.V,
                                                        ignoreIndex: nil, dloss: 0.5)
        let layer = SoftmaxCrossEntropy()
        let (loss, count) = try layer.forward(logits, targets: targets)
        #expect(count == s.M)
        expectApproximatelyEqual(loss, ref.loss, tolerance: Self.loss, "cross-entropy loss \(s)")
        let grad = try layer.backward(dloss: 0.5)
        #expect(grad.shape == logits.shape)
        expectApproximatelyEqual(grad, ref.dlogits, tolerance: Self.probability, "cross-entropy gradient \(s)")
        expectApproximatelyEqual(logits, logits.widenedScalars, tolerance: .exact, "backward leaves the logits alone")

        // The fused path: same loss, gradient written over the logits.
        var inPlace = logits
        let fused = try layer.lossAndGradient(&inPlace, targets: targets, dloss: 0.5)
        #expect(fused.count == s.M)
        expectApproximatelyEqual(fused.loss, ref.loss, tolerance: Self.loss, "fused loss \(s)")
        expectApproximatelyEqual(inPlace, ref.dlogits, tolerance: Self.probability, "fused gradient \(s)")

        expectApproximatelyEqual(try softmax(logits), NumericsReference.softmax(logits: logits.widenedScalars, V: s.V),
                                 tolerance: Self.probability, "softmax \(s)")
    }

    @Test(arguments: NumericLayerTests.shapes)
    func softmaxCrossEntropyIgnoreIndex(_ s: Shape) throws {
        var data = NumericsData(seed: 17)
        let logits = data.tensor([s.M, s.V], scale: 3)
        let ignore: Int32 = -100
        var targets = data.ids(s.M, below: s.V)
        for m in stride(from: 1, to: s.M, by: 2) { targets[m] = ignore }  // row 0 always counts
        let ref = NumericsReference.softmaxCrossEntropy(logits: logits.widenedScalars, targets: targets, V: s.V,
                                                        ignoreIndex: ignore)
        let layer = SoftmaxCrossEntropy(ignoreIndex: ignore)
        let (loss, count) = try layer.forward(logits, targets: targets)
        #expect(count == (s.M + 1) / 2)
        expectApproximatelyEqual(loss, ref.loss, tolerance: Self.loss, "loss with ignored rows \(s)")
        let grad = try layer.backward()
        expectApproximatelyEqual(grad, ref.dlogits, tolerance: Self.probability, "gradient with ignored rows \(s)")
        for m in 0..<s.M where targets[m] == ignore {  // skipped rows are exactly zero
            expectApproximatelyEqual(Array(grad.widenedScalars[(m * s.V)..<((m + 1) * s.V)]), [Double](repeating: 0, count: s.V),
                                     tolerance: .exact, "ignored row \(m)")
        }

        // Every row ignored: loss 0, count 0, zero gradient.
        var all = logits
        let none = try layer.lossAndGradient(&all, targets: [Int32](repeating: ignore, count: s.M))
        #expect(none.count == 0)
        expectApproximatelyEqual(none.loss, 0, tolerance: .exact, "loss with every row ignored")
        expectApproximatelyEqual(all, [Double](repeating: 0, count: s.M * s.V), tolerance: .exact, "zero gradient")
    }

    @Test func softmaxCrossEntropyIsStableForLargeLogits() throws {
        let logits = try Tensor(shape: [2, 3], scalars: [1000, 999, 998, -1000, -1001, -1002])
        let ref = NumericsReference.softmaxCrossEntropy(logits: logits.widenedScalars, targets: [2, 0], V: 3, ignoreIndex: nil)
        let layer = SoftmaxCrossEntropy()
        let (loss, _) = try layer.forward(logits, targets: [2, 0])
        expectApproximatelyEqual(loss, ref.loss, tolerance: Self.loss, "loss of large logits")
        expectApproximatelyEqual(try layer.backward(), ref.dlogits, tolerance: Self.probability, "gradient of large logits")
    }

    @Test func softmaxCrossEntropyRejectsBadInput() throws {
        let layer = SoftmaxCrossEntropy()
        expectRNNCoreError(.invalidState) { _ = try layer.backward() }
        let logits = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        expectRNNCoreError(.shapeMismatch) { _ = try layer.forward(logits, targets: [0]) }
        expectRNNCoreError(.shapeMismatch) { _ = try layer.forward(logits, targets: [0, 1, 2]) }
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try layer.forward(logits, targets: [0, 3]) }
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try layer.forward(logits, targets: [-1, 0]) }
        var inPlace = logits
        expectRNNCoreError(.shapeMismatch) { _ = try layer.lossAndGradient(&inPlace, targets: [0]) }
        layer.ignoreIndex = -1
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try layer.lossAndGradient(&inPlace, targets: [-2, 0]) }
        // "On an argument error nothing has been written": the logits survive a rejected fused call.
        expectApproximatelyEqual(inPlace, logits.widenedScalars, tolerance: .exact, "logits after a rejected call")
    }
}
