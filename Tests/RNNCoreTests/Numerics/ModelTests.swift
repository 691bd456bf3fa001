// RNNLanguageModel: analytic gradients against central differences, seeding, construction from tensors, and the
// perplexity evaluation against a manual token-by-token computation.

import Foundation
import RNNCore
import Testing

@Suite("Numerics: RNN language model")
struct NumericModelTests {
    static func tinyConfiguration(layers: Int, cell: CellKind = .rnn) -> RNNLanguageModel.Configuration {
        .init(vocabularySize: 7, embeddingSize: 4, hiddenSize: 5, layers: layers, cell: cell)
    }

    /// Central differences of the float32 forward pass with step eps = 1e-2. The loss is a double mean of float32
    /// log-sum-exps (noise ≈ 1e-7), which the difference quotient divides by 2·eps: ≈ 1e-5. The truncation error
    /// is eps²/6·|∂³L| ≈ 2e-5·|∂³L|, with third derivatives up to ~10 here. Hence 1e-4 absolute plus 1e-2
    /// relative (to the numerical derivative). Observed: max abs error 2.2e-4 (∂L/∂rnn.0.b, where the absolute
    /// part is topped up by the relative part), 25% of the tolerance; halving eps divides the errors by 4, so they
    /// are truncation, not a wrong gradient.
    static let centralDifference = NumericsTolerance(absolute: 1e-4, relative: 1e-2)

    /// The whole float32 model against the double reference chain. Each gradient is a sum of ≤ 36 rounded terms
    /// and, with the model's small initial weights, of magnitude ≤ 0.1, so rounding errors are ~√36·u·0.1 ≈ 4e-8;
    /// 1e-6 + 1e-5 relative leaves a margin of 10. Observed: max abs 1.2e-7, at most 9% of the tolerance.
    static let wholeModel = NumericsTolerance(absolute: 1e-6, relative: 1e-5)

    /// The same float32 computation cut into windows of another length: the GEMMs see other row counts, so the
    /// summation order may differ by a few roundings in every logit; the loss could move by ~1e-7 relative.
    /// Observed: ≤ 2e-15 (OpenBLAS happens to sum in the same order).
    static let rewindowed = NumericsTolerance(absolute: 1e-6, relative: 1e-5)

    /// The double references against their own central differences (eps 1e-5): truncation ≈ 1e-10·|∂³f|,
    /// cancellation ≈ 1e-16/1e-5 = 1e-11, so 1e-8 + 1e-6 relative is loose. This checks the yardstick itself.
    static let doubleCentralDifference = NumericsTolerance(absolute: 1e-8, relative: 1e-6)

    @Test func referenceBackwardsMatchTheirOwnCentralDifferences() throws {
        let (N, T, D, H, V) = (2, 3, 2, 3, 4)
        var data = NumericsData(seed: 300)
        let d = { (count: Int) in data.uniform(count, scale: 0.8).map(Double.init) }
        var inputs: [[Double]] = [d(N * T * D), d(N * H), d(D * H), d(H * H), d(H)]  // xs, h0, wx, wh, b
        let (dhs, dhLast) = (d(N * T * H), d(N * H))
        // f = Σ dhs·hs + Σ dhLast·h_last, whose gradient is what rnnBackward returns.
        func f(_ v: [[Double]]) -> Double {
            let hs = NumericsReference.rnnForward(xs: v[0], h0: v[1], wx: v[2], wh: v[3], b: v[4], N: N, T: T, D: D, H: H)
            let last = NumericsReference.lastState(hs: hs, N: N, T: T, H: H)
            return zip(dhs, hs).reduce(0) { $0 + $1.0 * $1.1 } + zip(dhLast, last).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let hs = NumericsReference.rnnForward(xs: inputs[0], h0: inputs[1], wx: inputs[2], wh: inputs[3], b: inputs[4],
                                              N: N, T: T, D: D, H: H)
        let r = NumericsReference.rnnBackward(dhs: dhs, dhLast: dhLast, xs: inputs[0], h0: inputs[1], hs: hs,
                                              wx: inputs[2], wh: inputs[3], N: N, T: T, D: D, H: H)
        let eps = 1e-5
        for (k, (name, analytic)) in [("dxs", r.dxs), ("dh0", r.dh0), ("dwx", r.dwx), ("dwh", r.dwh), ("db", r.db)].enumerated() {
            var numeric: [Double] = []
            for i in inputs[k].indices {
                let x = inputs[k][i]
                inputs[k][i] = x + eps
                let up = f(inputs)
                inputs[k][i] = x - eps
                numeric.append((up - f(inputs)) / (2 * eps))
                inputs[k][i] = x
            }
            expectApproximatelyEqual(analytic, numeric, tolerance: Self.doubleCentralDifference, "reference rnn \(name)")
        }

        var logits = d(5 * V).map { 3 * $0 }
        let targets: [Int32] = [0, 3, -1, 1, 3]
        let ce = NumericsReference.softmaxCrossEntropy(logits: logits, targets: targets, V: V, ignoreIndex: -1, dloss: 0.7)
        var numeric: [Double] = []
        for i in logits.indices {
            let x = logits[i]
            logits[i] = x + eps
            let up = NumericsReference.softmaxCrossEntropy(logits: logits, targets: targets, V: V, ignoreIndex: -1).loss
            logits[i] = x - eps
            let down = NumericsReference.softmaxCrossEntropy(logits: logits, targets: targets, V: V, ignoreIndex: -1).loss
            numeric.append(0.7 * (up - down) / (2 * eps))
            logits[i] = x
        }
        expectApproximatelyEqual(ce.dlogits, numeric, tolerance: Self.doubleCentralDifference, "reference cross-entropy gradient")
    }

    @Test(arguments: [(1, CellKind.rnn), (2, .rnn), (1, .lstm), (2, .lstm)], [false, true])
    func lossAndGradientsMatchCentralDifferences(_ shape: (layers: Int, cell: CellKind), ignoringSomeTargets: Bool) throws {
        let layers = shape.layers
        let model = try RNNLanguageModel(configuration: Self.tinyConfiguration(layers: layers, cell: shape.cell), seed: 7)
        let (N, T) = (2, 3)
        var data = NumericsData(seed: 100 + UInt64(layers))
        let ids = data.ids(N * T, below: 7)
        var targets = data.ids(N * T, below: 7)
        let ignore: Int32? = ignoringSomeTargets ? -1 : nil
        if ignoringSomeTargets { targets[1] = -1; targets[4] = -1 }

        model.resetState()
        model.parameters.zeroGradients()
        _ = try model.lossAndGradients(ids: ids, targets: targets, batchSize: N, ignoreIndex: ignore)

        let eps: Float = 1e-2
        for p in model.parameters {
            let analytic = p.gradient.widenedScalars
            // Sample entries: the first, the last, the largest gradient, and six drawn at random.
            var indices: Set<Int> = [0, p.value.count - 1, analytic.indices.max { abs(analytic[$0]) < abs(analytic[$1]) }!]
            for _ in 0..<6 { indices.insert(data.rng.nextInt(below: p.value.count)) }
            let sampled = indices.sorted()
            var numeric: [Double] = []
            for i in sampled {
                let original = p.value[flat: i]
                func loss(at value: Float) throws -> Double {
                    p.value[flat: i] = value
                    model.resetState()  // every evaluation starts from the same (zero) state
                    return try model.loss(ids: ids, targets: targets, batchSize: N, ignoreIndex: ignore).loss
                }
                let (up, down) = (original + eps, original - eps)
                let difference = try loss(at: up) - loss(at: down)
                p.value[flat: i] = original
                numeric.append(difference / Double(up - down))  // the float steps actually taken
            }
            expectApproximatelyEqual(sampled.map { analytic[$0] }, numeric, tolerance: Self.centralDifference,
                                     "∂L/∂\(p.name) (L=\(layers) \(shape.cell), ignore \(ignoringSomeTargets)) at \(sampled)")
        }
    }

    /// The loss and every parameter gradient of `model` computed by chaining the double references (from a zero
    /// state, as `lossAndGradients` after `resetState()`).
    static func referenceLossAndGradients(_ model: RNNLanguageModel, ids: [Int32], targets: [Int32], batchSize N: Int,
                                          ignoreIndex: Int32?) -> (loss: Double, gradients: [String: [Double]]) {
        let c = model.configuration
        let (V, D, H, T) = (c.vocabularySize, c.embeddingSize, c.hiddenSize, ids.count / N)
        let w = model.namedTensors.mapValues(\.widenedScalars)
        var inputs = [NumericsReference.embedding(ids: ids, table: w["embedding.weight"]!, V: V, D: D)]
        for l in 0..<c.layers {
            inputs.append(NumericsReference.rnnForward(xs: inputs[l], h0: nil, wx: w["rnn.\(l).wx"]!, wh: w["rnn.\(l).wh"]!,
                                                       b: w["rnn.\(l).b"]!, N: N, T: T, D: l == 0 ? D : H, H: H))
        }
        let logits = NumericsReference.affine(x: inputs[c.layers], w: w["output.weight"]!, b: w["output.bias"]!,
                                              M: N * T, D: H, O: V)
        let ce = NumericsReference.softmaxCrossEntropy(logits: logits, targets: targets, V: V, ignoreIndex: ignoreIndex)
        var g: [String: [Double]] = [:]
        let out = NumericsReference.affineBackward(dy: ce.dlogits, x: inputs[c.layers], w: w["output.weight"]!,
                                                   M: N * T, D: H, O: V)
        (g["output.weight"], g["output.bias"]) = (out.dw, out.db)
        var dx = out.dx
        for l in (0..<c.layers).reversed() {
            let r = NumericsReference.rnnBackward(dhs: dx, dhLast: nil, xs: inputs[l], h0: nil, hs: inputs[l + 1],
                                                  wx: w["rnn.\(l).wx"]!, wh: w["rnn.\(l).wh"]!,
                                                  N: N, T: T, D: l == 0 ? D : H, H: H)
            (g["rnn.\(l).wx"], g["rnn.\(l).wh"], g["rnn.\(l).b"]) = (r.dwx, r.dwh, r.db)
            dx = r.dxs
        }
        g["embedding.weight"] = NumericsReference.embeddingBackward(dout: dx, ids: ids, V: V, D: D)
        return (ce.loss, g)
    }

    @Test(arguments: [1, 2, 3], [false, true])
    func lossAndGradientsMatchTheDoubleReference(layers: Int, ignoringSomeTargets: Bool) throws {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: 9, embeddingSize: 3, hiddenSize: 6, layers: layers)
        let model = try RNNLanguageModel(configuration: configuration, seed: 17)
        var data = NumericsData(seed: 200 + UInt64(layers))
        let (N, T) = (3, 4)
        let ids = data.ids(N * T, below: 9)
        var targets = data.ids(N * T, below: 9)
        let ignore: Int32? = ignoringSomeTargets ? 99 : nil
        if ignoringSomeTargets { targets[0] = 99; targets[7] = 99 }
        model.parameters.zeroGradients()
        let (loss, count) = try model.lossAndGradients(ids: ids, targets: targets, batchSize: N, ignoreIndex: ignore)
        let reference = Self.referenceLossAndGradients(model, ids: ids, targets: targets, batchSize: N, ignoreIndex: ignore)
        #expect(count == (ignoringSomeTargets ? N * T - 2 : N * T))
        expectApproximatelyEqual(loss, reference.loss, tolerance: Self.wholeModel, "model loss (L=\(layers))")
        for p in model.parameters {
            expectApproximatelyEqual(p.gradient, reference.gradients[p.name]!, tolerance: Self.wholeModel,
                                     "model ∂L/∂\(p.name) (L=\(layers), ignore \(ignoringSomeTargets))")
        }
    }

    @Test func seedsDetermineTheInitialWeights() throws {
        let configuration = Self.tinyConfiguration(layers: 2)
        let a = try RNNLanguageModel(configuration: configuration, seed: 1).namedTensors
        let b = try RNNLanguageModel(configuration: configuration, seed: 1).namedTensors
        let c = try RNNLanguageModel(configuration: configuration, seed: 2).namedTensors
        let names = ["embedding.weight", "output.bias", "output.weight"]
            + (0..<2).flatMap { ["rnn.\($0).b", "rnn.\($0).wh", "rnn.\($0).wx"] }
        #expect(a.keys.sorted() == names.sorted())
        for name in names {
            let (x, y) = (try #require(a[name]), try #require(b[name]))
            #expect(x.shape == y.shape)
            // Same seed: the same weights bit for bit.
            expectApproximatelyEqual(x, y.widenedScalars, tolerance: .exact, "\(name) with equal seeds")
        }
        // Different seeds: every randomly initialised tensor differs (the biases start at zero in both).
        for name in names where !name.hasSuffix("b") && !name.hasSuffix("bias") {
            let differs = zip(a[name]!.scalars, c[name]!.scalars).contains { $0.bitPattern != $1.bitPattern }
            #expect(differs, "\(name) is the same for seeds 1 and 2")
        }
        for name in ["output.bias", "rnn.0.b", "rnn.1.b"] {
            expectApproximatelyEqual(a[name]!, [Double](repeating: 0, count: a[name]!.count), tolerance: .exact,
                                     "\(name) starts at zero")
        }
    }

    @Test func initFromTensorsValidatesNamesAndShapes() throws {
        let configuration = Self.tinyConfiguration(layers: 1)
        let reference = try RNNLanguageModel(configuration: configuration, seed: 3)
        let tensors = reference.namedTensors

        // A complete set rebuilds the same model: same logits, bit for bit.
        let rebuilt = try RNNLanguageModel(configuration: configuration, tensors: tensors)
        let ids: [Int32] = [0, 6, 3, 2]
        expectApproximatelyEqual(try rebuilt.logits(for: ids, batchSize: 2),
                                 try reference.logits(for: ids, batchSize: 2).widenedScalars,
                                 tolerance: .exact, "logits of the rebuilt model")

        var missing = tensors
        missing["rnn.0.wh"] = nil
        expectRNNCoreError(.invalidArgument) { _ = try RNNLanguageModel(configuration: configuration, tensors: missing) }
        var extra = tensors
        extra["rnn.1.wx"] = Tensor(zeros: [5, 5])
        expectRNNCoreError(.invalidArgument) { _ = try RNNLanguageModel(configuration: configuration, tensors: extra) }
        var wrongShape = tensors
        wrongShape["output.weight"] = Tensor(zeros: [7, 5])  // transposed
        expectRNNCoreError(.shapeMismatch) { _ = try RNNLanguageModel(configuration: configuration, tensors: wrongShape) }
        var wrongBias = tensors
        wrongBias["rnn.0.b"] = Tensor(zeros: [1, 5])
        expectRNNCoreError(.shapeMismatch) { _ = try RNNLanguageModel(configuration: configuration, tensors: wrongBias) }

        for bad in [RNNLanguageModel.Configuration(vocabularySize: 0, embeddingSize: 4, hiddenSize: 5, layers: 1),
                    .init(vocabularySize: 7, embeddingSize: 0, hiddenSize: 5, layers: 1),
                    .init(vocabularySize: 7, embeddingSize: 4, hiddenSize: 5, layers: 0)] {
            expectRNNCoreError(.invalidArgument) { _ = try RNNLanguageModel(configuration: bad, seed: 1) }
        }
        expectRNNCoreError(.shapeMismatch) { _ = try reference.logits(for: [0, 1, 2], batchSize: 2) }
        expectRNNCoreError(.shapeMismatch) { _ = try reference.loss(ids: [0, 1], targets: [1], batchSize: 1) }
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try reference.logits(for: [0, 7], batchSize: 1) }
    }

    /// The carried states of every layer, bit for bit (empty for a layer without state).
    static func stateBits(_ model: RNNLanguageModel) -> [[[UInt32]]] {
        model.state.map { $0.map { $0.scalars.map(\.bitPattern) } }
    }

    @Test func perplexityWithOneStreamIsTheExactStatefulPerplexity() throws {
        let model = try RNNLanguageModel(configuration: Self.tinyConfiguration(layers: 2), seed: 5)
        var data = NumericsData(seed: 9)
        let ids = data.ids(13, below: 7)

        // A fresh model has no state; perplexity leaves it so.
        _ = try model.perplexity(on: ids, batchSize: 1, bptt: 4)
        #expect(model.state.allSatisfy { $0.isEmpty })

        // Give the model a state (2 streams), then evaluate: the state must come back unchanged.
        _ = try model.logits(for: data.ids(6, below: 7), batchSize: 2)
        let before = Self.stateBits(model)
        let perplexity = try model.perplexity(on: ids, batchSize: 1, bptt: 4)
        #expect(Self.stateBits(model) == before, "perplexity changed the hidden state")
        // Even when the evaluation fails half way.
        expectRNNCoreError(.kernel(.indexOutOfRange)) { _ = try model.perplexity(on: ids + [9], batchSize: 1, bptt: 4) }
        #expect(Self.stateBits(model) == before, "a failed perplexity changed the hidden state")

        // Manual: one token at a time from a zero state, the state carried from step to step.
        model.resetState()
        var total = 0.0
        for i in 0..<(ids.count - 1) {
            total += try model.loss(ids: [ids[i]], targets: [ids[i + 1]], batchSize: 1).loss
        }
        let manual = total / Double(ids.count - 1)
        expectApproximatelyEqual(log(perplexity), manual, tolerance: Self.rewindowed, "log perplexity, one stream")
        let (meanLoss, count) = try model.meanLoss(on: ids, batchSize: 1, bptt: 35)
        #expect(count == ids.count - 1)
        expectApproximatelyEqual(meanLoss, manual, tolerance: Self.rewindowed, "mean loss, one window")
    }

    struct StreamCase: Sendable, CustomTestStringConvertible {
        let tokens: Int, batchSize: Int, bptt: Int
        var testDescription: String { "\(tokens) tokens, batch \(batchSize), bptt \(bptt)" }
    }

    @Test(arguments: [
        StreamCase(tokens: 15, batchSize: 3, bptt: 2),  // 14 predictions: streams of 5, 5, 4 (+1 padding)
        StreamCase(tokens: 13, batchSize: 3, bptt: 4),  // 12 predictions: three full streams of 4
        StreamCase(tokens: 6, batchSize: 4, bptt: 1),   // 5 predictions: streams of 2, 2, 1, 0
        StreamCase(tokens: 8, batchSize: 3, bptt: 35),  // bptt longer than a stream
        StreamCase(tokens: 2, batchSize: 3, bptt: 2),   // a single prediction: one stream
    ])
    func perplexityWithSeveralStreamsCountsEveryPredictionOnce(_ c: StreamCase) throws {
        let model = try RNNLanguageModel(configuration: Self.tinyConfiguration(layers: 1), seed: 6)
        var data = NumericsData(seed: 10)
        let ids = data.ids(c.tokens, below: 7)
        let (meanLoss, count) = try model.meanLoss(on: ids, batchSize: c.batchSize, bptt: c.bptt)
        let predictions = ids.count - 1
        #expect(count == predictions)

        // Manual: the text cut into min(N, P) contiguous streams of ⌈P/N⌉ predictions, each read token by token
        // from a zero state.
        let streams = min(c.batchSize, predictions)
        let length = (predictions + streams - 1) / streams
        var total = 0.0
        var counted = 0
        for n in 0..<streams {
            model.resetState()
            for position in stride(from: n * length, to: min((n + 1) * length, predictions), by: 1) {
                total += try model.loss(ids: [ids[position]], targets: [ids[position + 1]], batchSize: 1).loss
                counted += 1
            }
        }
        #expect(counted == predictions)
        expectApproximatelyEqual(meanLoss, total / Double(counted), tolerance: Self.rewindowed, "mean loss \(c.testDescription)")
        expectApproximatelyEqual(try model.perplexity(on: ids, batchSize: c.batchSize, bptt: c.bptt),
                                 exp(total / Double(counted)), tolerance: Self.rewindowed, "perplexity \(c.testDescription)")
    }

    @Test func perplexityRejectsBadArguments() throws {
        let model = try RNNLanguageModel(configuration: Self.tinyConfiguration(layers: 1), seed: 6)
        expectRNNCoreError(.invalidArgument) { _ = try model.perplexity(on: [3]) }
        expectRNNCoreError(.invalidArgument) { _ = try model.perplexity(on: [3, 4], batchSize: 0) }
        expectRNNCoreError(.invalidArgument) { _ = try model.perplexity(on: [3, 4], bptt: 0) }
    }
}
