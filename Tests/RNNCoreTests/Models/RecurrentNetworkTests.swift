// RecurrentNetwork (stacked, bidirectional RNN/LSTM like torch.nn.RNN/LSTM with batch_first=True) and its PyTorch
// import and export.
//
// Tolerances (u = 2⁻²⁴ ≈ 6e-8, the float32 unit roundoff; set RNNCORE_NUMERICS_LOG=1 to print the errors observed):
// - `pyTorch`, 1e-5 + 1e-5·|ref|: the fixtures hold PyTorch's computation in float64 from float32 inputs and
//   weights, rounded once to float32 (examples/pytorch/make_fixtures.py), so every difference is RNNCore's float32
//   rounding plus u/2 of storage. Values are O(1) (gradients up to ~5); each comes from sums of ≤ D_l + H ≤ 12
//   products per step, carried through T = 5 steps and 2 layers, and a weight gradient sums N·T = 10 such terms:
//   a few u per operation compounding over ~20 dependent steps gives ~1e-6 at worst. Observed: max abs 9.5e-7,
//   at most 7% of the tolerance (rnn_l2_bidirectional, d weight_ih_l0_reverse); the word language model's logits
//   3e-8. (PyTorch's own float32 run lies up to 4.7e-7 from the same reference, as make_fixtures.py prints.)
// - `gradient`, 1e-5 + 1e-5·|ref|: the analytic float32 gradients against central differences of the
//   double-precision reference (ε = 1e-5: truncation ε²·|f‴|/6 ≈ 1e-11, cancellation 1e-16·|loss|/ε ≈ 1e-10, so the
//   differences are exact to ~1e-9 and the error is the float32 backward's own, bounded as above). Observed: max
//   abs 3.1e-7, at most 1.4% of the tolerance (rnn L2 bidirectional).
// - dropout, 1e-4 + 1e-4·|ref|: float32 central differences with ε = 1e-2 through the same masks: truncation
//   ε²·|f‴|/6 ≈ 2e-5 and cancellation ≈ √48·u·|y|/(2ε) ≈ 2e-5. Observed: 1.1e-6.
// - `.exact`: one layer and one direction is the plain layer, bit for bit; export→import only copies and transposes.

import Foundation
import RNNCore
import Testing

@Suite("Models: RecurrentNetwork and PyTorch import")
struct RecurrentNetworkTests {
    /// Float32 against PyTorch's float64 computation (see the file comment).
    static let pyTorch = NumericsTolerance(absolute: 1e-5, relative: 1e-5)
    /// Float32 analytic gradients against double-precision central differences (see the file comment).
    static let gradient = NumericsTolerance(absolute: 1e-5, relative: 1e-5)

    // MARK: (a) PyTorch fixtures

    struct Fixture: Sendable, CustomTestStringConvertible {
        let cell: CellKind, layers: Int, bidirectional: Bool
        var name: String { "\(cell.rawValue)_l\(layers)_\(bidirectional ? "bidirectional" : "unidirectional")" }
        var testDescription: String { name }
    }

    static let fixtures: [Fixture] = CellKind.allCases.flatMap { cell in
        [1, 2].flatMap { layers in [false, true].map { Fixture(cell: cell, layers: layers, bidirectional: $0) } }
    }

    @Test(arguments: RecurrentNetworkTests.fixtures)
    func matchesPyTorch(_ f: Fixture) throws {
        let url = PyTorchFixtures.url(f.name)
        let file = try SafeTensorsFile.read(from: url)
        let t = { (name: String) throws -> Tensor in try PyTorchFixtures.tensor(file, name) }
        #expect(file.metadata["cell"] == f.cell.rawValue && file.metadata["layers"] == "\(f.layers)")

        // Everything inferred from the shapes and names (but the relu, which PyTorch's state dict does not tell from
        // the tanh RNN); the test tensors outside the prefix are not read.
        let network = try RecurrentNetwork.load(pyTorchSafeTensors: url, prefix: "\(f.cell.rawValue).",
                                                cell: f.cell == .rnnRelu ? .rnnRelu : nil)
        #expect(network.cell == f.cell && network.layers == f.layers && network.bidirectional == f.bidirectional)
        #expect(network.inputSize == 3 && network.hiddenSize == 4)
        let dirs = network.directions
        let (N, T, H) = (2, 5, 4)

        let hasC = f.cell.specification.stateCount == 2
        let initial = try RecurrentNetwork.State(h: t("h0"), c: hasC ? t("c0") : nil)
        let (outputs, final) = try network.forward(t("input"), initialState: initial)
        #expect(outputs.shape == [N, T, dirs * H] && final.h.shape == [f.layers * dirs, N, H])
        expectApproximatelyEqual(outputs, try t("output").widenedScalars, tolerance: Self.pyTorch, "\(f.name) output")
        expectApproximatelyEqual(final.h, try t("h_n").widenedScalars, tolerance: Self.pyTorch, "\(f.name) h_n")
        if hasC {
            expectApproximatelyEqual(try #require(final.c), try t("c_n").widenedScalars, tolerance: Self.pyTorch,
                                     "\(f.name) c_n")
        } else {
            #expect(final.c == nil)
        }

        // loss = Σ output·w + Σ h_n·v (+ Σ c_n·u): its gradients are w, v, u.
        let (w, v) = (try t("loss.output_weight"), try t("loss.h_n_weight"))
        let u = try hasC ? t("loss.c_n_weight") : nil
        func dot(_ a: Tensor, _ b: Tensor) -> Double { zip(a.widenedScalars, b.widenedScalars).reduce(0) { $0 + $1.0 * $1.1 } }
        let loss = dot(outputs, w) + dot(final.h, v) + (u.map { dot(final.c!, $0) } ?? 0)
        expectApproximatelyEqual(loss, try t("loss").widenedScalars[0], tolerance: Self.pyTorch, "\(f.name) loss")

        network.parameters.zeroGradients()
        let (dxs, dInitial) = try network.backward(w, finalStateGradient: RecurrentNetwork.State(h: v, c: u))
        expectApproximatelyEqual(dxs, try t("grad.input").widenedScalars, tolerance: Self.pyTorch, "\(f.name) d input")
        expectApproximatelyEqual(dInitial.h, try t("grad.h0").widenedScalars, tolerance: Self.pyTorch, "\(f.name) d h0")
        if hasC {
            expectApproximatelyEqual(try #require(dInitial.c), try t("grad.c0").widenedScalars,
                                     tolerance: Self.pyTorch, "\(f.name) d c0")
        }
        // PyTorch's weight gradients are ours transposed; both of its biases get our db, except for the GRU, whose
        // bias_hh is its own hidden bias.
        let G = f.cell.specification.gateWidth(hiddenSize: H)
        for (k, layer) in network.recurrentLayers.enumerated() {
            let s = "_l\(k / dirs)" + (k % dirs == 1 ? "_reverse" : "")
            let width = layer.inputSize
            expectApproximatelyEqual(layer.wx.gradient.widenedScalars.transposed(rows: width, columns: G),
                                     try t("grad.weight_ih\(s)").widenedScalars, tolerance: Self.pyTorch,
                                     "\(f.name) d weight_ih\(s)")
            expectApproximatelyEqual(layer.wh.gradient.widenedScalars.transposed(rows: H, columns: G),
                                     try t("grad.weight_hh\(s)").widenedScalars, tolerance: Self.pyTorch,
                                     "\(f.name) d weight_hh\(s)")
            expectApproximatelyEqual(layer.b.gradient, try t("grad.bias_ih\(s)").widenedScalars,
                                     tolerance: Self.pyTorch, "\(f.name) d bias_ih\(s)")
            expectApproximatelyEqual((layer.parameter(.hiddenBias) ?? layer.b).gradient,
                                     try t("grad.bias_hh\(s)").widenedScalars, tolerance: Self.pyTorch,
                                     "\(f.name) d bias_hh\(s)")
        }

        // Stated explicitly, the cell and direction give the same network.
        let explicit = try RecurrentNetwork.load(pyTorchSafeTensors: url, prefix: "\(f.cell.rawValue).", cell: f.cell,
                                                 bidirectional: f.bidirectional)
        #expect(explicit.namedTensors == network.namedTensors)
    }

    @Test func wordLanguageModelMatchesPyTorch() throws {
        let url = PyTorchFixtures.url("word_language_model_lstm")
        let file = try SafeTensorsFile.read(from: url)
        let model = try RNNLanguageModel.load(pyTorchWordLanguageModel: url, prefix: "model.")
        let c = model.configuration
        #expect(c.vocabularySize == 7 && c.embeddingSize == 3 && c.hiddenSize == 4 && c.layers == 2 && c.cell == .lstm)
        let ids = try #require(file.tensors["ids"]?.int32s)
        let logits = try model.logits(for: ids, batchSize: 2)
        expectApproximatelyEqual(logits, try PyTorchFixtures.tensor(file, "logits").widenedScalars,
                                 tolerance: Self.pyTorch, "word language model logits")
    }

    // MARK: (b) One layer, one direction is the plain layer

    static func layerWeights(_ cell: CellKind, D: Int, H: Int, _ data: inout NumericsData) -> RecurrentNetwork.Weights {
        let spec = cell.specification
        let G = spec.gateWidth(hiddenSize: H)
        return RecurrentNetwork.Weights(wx: data.tensor([D, G], scale: 0.5), wh: data.tensor([H, G], scale: 0.5),
                                        b: data.tensor([G], scale: 0.1),
                                        hiddenBias: spec.hasHiddenBias ? data.tensor([G], scale: 0.1) : nil)
    }

    @Test(arguments: CellKind.allCases, [false, true])
    func singleLayerIsThePlainLayerBitForBit(_ cell: CellKind, withInitialState: Bool) throws {
        let (N, T, D, H) = (3, 6, 5, 4)
        var data = NumericsData(seed: 31)
        let w = Self.layerWeights(cell, D: D, H: H, &data)
        let network = try RecurrentNetwork(cell: cell, bidirectional: false, weights: [w])
        let layer = try RecurrentLayer(cell: cell, weights: [w.wx, w.wh, w.b] + (w.hiddenBias.map { [$0] } ?? []))
        let xs = data.tensor([N, T, D])
        let states = cell.specification.stateCount
        let h0 = (0..<states).map { _ in data.tensor([N, H], scale: 0.5) }
        let dhs = data.tensor([N, T, H])
        let dLast = (0..<states).map { _ in data.tensor([N, H]) }

        let initial = withInitialState
            ? RecurrentNetwork.State(h: try h0[0].reshaped([1, N, H]), c: try h0.dropFirst().first?.reshaped([1, N, H]))
            : nil
        let (outputs, final) = try network.forward(xs, initialState: initial)
        try layer.setCarriedState(withInitialState ? h0 : [])
        var hs = Tensor(zeros: [0])
        try layer.forward(xs, into: &hs)
        #expect(outputs == hs)
        let carried = try layer.carriedState.map { try $0.reshaped([1, N, H]) }
        #expect(final.h == carried[0])
        #expect(final.c == carried.dropFirst().first)

        let (dxs, dInitial) = try network.backward(
            dhs, finalStateGradient: RecurrentNetwork.State(h: try dLast[0].reshaped([1, N, H]),
                                                            c: try dLast.dropFirst().first?.reshaped([1, N, H])))
        var layerDxs = Tensor(zeros: [0])
        try layer.backward(dhs, finalStateGradient: dLast, into: &layerDxs)
        #expect(dxs == layerDxs)
        let dState = try layer.initialStateGradients.map { try $0.reshaped([1, N, H]) }
        #expect(dInitial.h == dState[0])
        #expect(dInitial.c == dState.dropFirst().first)
        for (a, b) in zip(network.parameters, layer.parameters) {
            #expect(a.gradient == b.gradient, "\(a.name)")
        }
    }

    @Test(arguments: CellKind.allCases)
    func callsKeepNoStateAndGradientsAccumulate(_ cell: CellKind) throws {
        let network = try RecurrentNetwork(cell: cell, inputSize: 3, hiddenSize: 4, layers: 2, bidirectional: true,
                                           seed: 23)
        var data = NumericsData(seed: 24)
        let xs = data.tensor([2, 5, 3]), other = data.tensor([3, 4, 3])
        let h0 = data.tensor([4, 3, 4])
        let (first, firstState) = try network(xs)
        // Another batch size and an initial state in between leave nothing behind.
        _ = try network(other, initialState: .init(h: h0, c: cell.specification.stateCount == 2 ? h0 : nil))
        let (again, againState) = try network(xs)
        #expect(again == first && againState == firstState)

        let dOutputs = data.tensor([2, 5, 8])
        network.parameters.zeroGradients()
        let (dxs1, _) = try network.backward(dOutputs)
        let once = network.parameters.map(\.gradient.widenedScalars)
        let (dxs2, _) = try network.backward(dOutputs)
        #expect(dxs1 == dxs2)
        for (p, g) in zip(network.parameters, once) {
            expectApproximatelyEqual(p.gradient, g.map { 2 * $0 }, tolerance: NumericLayerTests.linear,
                                     "\(p.name) doubles")
        }
    }

    // MARK: (c) Central differences against the double-precision reference

    struct GradientCase: Sendable, CustomTestStringConvertible {
        let cell: CellKind, layers: Int, bidirectional: Bool
        var testDescription: String { "\(cell.rawValue) L\(layers) \(bidirectional ? "bidirectional" : "unidirectional")" }
    }

    static let gradientCases = [
        GradientCase(cell: .rnn, layers: 2, bidirectional: true), GradientCase(cell: .lstm, layers: 2, bidirectional: true),
        GradientCase(cell: .rnn, layers: 3, bidirectional: false), GradientCase(cell: .lstm, layers: 3, bidirectional: false),
        GradientCase(cell: .gru, layers: 2, bidirectional: true), GradientCase(cell: .gru, layers: 3, bidirectional: false),
        GradientCase(cell: .rnnRelu, layers: 2, bidirectional: true),
    ]

    @Test(arguments: RecurrentNetworkTests.gradientCases)
    func gradientsMatchCentralDifferences(_ g: GradientCase) throws {
        let (N, T, D, H) = (2, 4, 3, 4)
        let dirs = g.bidirectional ? 2 : 1
        var data = NumericsData(seed: 41)
        var weights: [RecurrentNetwork.Weights] = []
        for l in 0..<g.layers {
            for _ in 0..<dirs { weights.append(Self.layerWeights(g.cell, D: l == 0 ? D : dirs * H, H: H, &data)) }
        }
        let network = try RecurrentNetwork(cell: g.cell, bidirectional: g.bidirectional, weights: weights)
        let lstm = g.cell.specification.stateCount == 2
        let xs = data.tensor([N, T, D])
        let h0 = data.tensor([g.layers * dirs, N, H], scale: 0.5)
        let c0 = lstm ? data.tensor([g.layers * dirs, N, H], scale: 0.5) : nil
        let w = data.tensor([N, T, dirs * H]), v = data.tensor([g.layers * dirs, N, H])
        let u = lstm ? data.tensor([g.layers * dirs, N, H]) : nil

        // Forward against the reference.
        var reference = RecurrentReference(network)
        let zeros = [Double](repeating: 0, count: h0.count)
        let expected = reference.forward(xs: xs.widenedScalars, h0: h0.widenedScalars,
                                         c0: c0?.widenedScalars ?? zeros, N: N, T: T)
        let (outputs, final) = try network.forward(xs, initialState: RecurrentNetwork.State(h: h0, c: c0))
        expectApproximatelyEqual(outputs, expected.outputs, tolerance: Self.gradient, "\(g.testDescription) outputs")
        expectApproximatelyEqual(final.h, expected.h, tolerance: Self.gradient, "\(g.testDescription) h_n")
        if lstm { expectApproximatelyEqual(try #require(final.c), expected.c, tolerance: Self.gradient, "\(g.testDescription) c_n") }

        // Analytic gradients of loss = Σ outputs·w + Σ h_n·v (+ Σ c_n·u).
        network.parameters.zeroGradients()
        let (dxs, dInitial) = try network.backward(w, finalStateGradient: RecurrentNetwork.State(h: v, c: u))

        // Central differences of the same loss computed in double precision.
        let (wd, vd, ud) = (w.widenedScalars, v.widenedScalars, u?.widenedScalars ?? zeros)
        func loss(_ r: RecurrentReference, _ x: [Double], _ h: [Double], _ c: [Double]) -> Double {
            let y = r.forward(xs: x, h0: h, c0: c, N: N, T: T)
            var s = 0.0
            for i in y.outputs.indices { s += y.outputs[i] * wd[i] }
            for i in y.h.indices { s += y.h[i] * vd[i] + y.c[i] * ud[i] }
            return s
        }
        let epsilon = 1e-5
        func central(_ perturb: (Double) -> Double) -> Double { (perturb(epsilon) - perturb(-epsilon)) / (2 * epsilon) }
        var (x, h, c) = (xs.widenedScalars, h0.widenedScalars, c0?.widenedScalars ?? zeros)
        let name = g.testDescription

        let dx = x.indices.map { i in
            central { e in x[i] += e; defer { x[i] -= e }; return loss(reference, x, h, c) }
        }
        expectApproximatelyEqual(dxs, dx, tolerance: Self.gradient, "\(name) d input")
        let dh = h.indices.map { i in
            central { e in h[i] += e; defer { h[i] -= e }; return loss(reference, x, h, c) }
        }
        expectApproximatelyEqual(dInitial.h, dh, tolerance: Self.gradient, "\(name) d h0")
        if lstm {
            let dc = c.indices.map { i in
                central { e in c[i] += e; defer { c[i] -= e }; return loss(reference, x, h, c) }
            }
            expectApproximatelyEqual(try #require(dInitial.c), dc, tolerance: Self.gradient, "\(name) d c0")
        }
        for (k, layer) in network.recurrentLayers.enumerated() {
            for (spec, parameter) in zip(layer.specification.parameters, layer.parameters) {
                let numeric = (0..<parameter.value.count).map { i in
                    central { e in
                        let saved = reference.weights[k]
                        defer { reference.weights[k] = saved }
                        switch spec.role {
                        case .inputWeight: reference.weights[k].wx[i] += e
                        case .hiddenWeight: reference.weights[k].wh[i] += e
                        case .bias: reference.weights[k].b[i] += e
                        case .hiddenBias: reference.weights[k].bh[i] += e
                        }
                        return loss(reference, x, h, c)
                    }
                }
                expectApproximatelyEqual(parameter.gradient, numeric, tolerance: Self.gradient, "\(name) d \(parameter.name)")
            }
        }
    }

    @Test func dropoutGradientsMatchCentralDifferencesOverTheSameMasks() throws {
        // With the generator rewound before every call, each forward draws the same masks: the loss is a smooth
        // function of the input (tolerance: see the file comment).
        let (N, T, D, H) = (2, 3, 3, 4)
        var data = NumericsData(seed: 51)
        let weights = (0..<4).map { k in Self.layerWeights(.lstm, D: k < 2 ? D : 2 * H, H: H, &data) }
        let network = try RecurrentNetwork(cell: .lstm, bidirectional: true, weights: weights, dropout: 0.5,
                                           dropoutSeed: 9)
        let xs = data.tensor([N, T, D]), w = data.tensor([N, T, 2 * H])
        let start = network.dropoutGenerator
        func loss(_ x: Tensor) throws -> Double {
            network.dropoutGenerator = start
            let (y, _) = try network.forward(x, training: true)
            return zip(y.widenedScalars, w.widenedScalars).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let base = try loss(xs)
        let (dxs, _) = try network.backward(w)
        let evaluation = try network.forward(xs).outputs
        network.dropoutGenerator = start
        let training = try network.forward(xs, training: true).outputs
        #expect(evaluation != training, "dropout changes the training forward")
        #expect(base.isFinite)

        var numeric: [Double] = []
        for i in 0..<xs.count {
            var plus = xs, minus = xs
            plus[flat: i] += 1e-2
            minus[flat: i] -= 1e-2
            numeric.append((try loss(plus) - loss(minus)) / 2e-2)
        }
        expectApproximatelyEqual(dxs, numeric, tolerance: NumericsTolerance(absolute: 1e-4, relative: 1e-4),
                                 "dropout d input")
    }

    // MARK: (d) Bad inputs

    @Test func forwardAndBackwardRejectBadShapes() throws {
        var data = NumericsData(seed: 61)
        let weights = (0..<4).map { k in Self.layerWeights(.lstm, D: k < 2 ? 3 : 8, H: 4, &data) }
        let lstm = try RecurrentNetwork(cell: .lstm, bidirectional: true, weights: weights)
        let rnn = try RecurrentNetwork(cell: .rnn, inputSize: 3, hiddenSize: 4, layers: 2, seed: 1)
        let xs = Tensor(zeros: [2, 5, 3])
        let h = Tensor(zeros: [4, 2, 4])

        expectRNNCoreError(.invalidState) { _ = try lstm.backward(Tensor(zeros: [2, 5, 8])) }
        expectRNNCoreError(.shapeMismatch) { _ = try lstm.forward(Tensor(zeros: [2, 5, 4])) }      // input width
        expectRNNCoreError(.shapeMismatch) { _ = try lstm.forward(Tensor(zeros: [10, 3])) }        // not (N, T, D)
        expectRNNCoreError(.shapeMismatch) { _ = try lstm.forward(Tensor(zeros: [2, 0, 3])) }      // T = 0
        let badStates: [RecurrentNetwork.State] = [
            .init(h: Tensor(zeros: [2, 2, 4]), c: h),   // L·dirs
            .init(h: Tensor(zeros: [4, 3, 4]), c: h),   // N
            .init(h: Tensor(zeros: [4, 2, 5]), c: h),   // H
            .init(h: h, c: Tensor(zeros: [4, 2])),      // c rank
        ]
        for state in badStates {
            expectRNNCoreError(.shapeMismatch) { _ = try lstm.forward(xs, initialState: state) }
        }
        expectRNNCoreError(.invalidArgument) { _ = try lstm.forward(xs, initialState: .init(h: h)) }  // no c0
        expectRNNCoreError(.invalidArgument) {
            _ = try rnn.forward(xs, initialState: .init(h: Tensor(zeros: [2, 2, 4]), c: Tensor(zeros: [2, 2, 4])))
        }

        _ = try lstm.forward(xs, initialState: .init(h: h, c: h))
        expectRNNCoreError(.shapeMismatch) { _ = try lstm.backward(Tensor(zeros: [2, 5, 4])) }
        expectRNNCoreError(.shapeMismatch) { _ = try lstm.backward(Tensor(zeros: [2, 5, 8]), finalStateGradient: .init(h: Tensor(zeros: [4, 2, 3]))) }
        // A missing c gradient counts as zeros.
        _ = try lstm.backward(Tensor(zeros: [2, 5, 8]), finalStateGradient: .init(h: h))

        // Weights that do not fit together.
        let w = Self.layerWeights(.rnn, D: 3, H: 4, &data)
        expectRNNCoreError(.invalidArgument) { _ = try RecurrentNetwork(cell: .rnn, bidirectional: false, weights: []) }
        expectRNNCoreError(.invalidArgument) { _ = try RecurrentNetwork(cell: .rnn, bidirectional: true, weights: [w]) }
        expectRNNCoreError(.invalidArgument) {
            _ = try RecurrentNetwork(cell: .rnn, bidirectional: false, weights: [w], dropout: 1)
        }
        expectRNNCoreError(.shapeMismatch) { _ = try RecurrentNetwork(cell: .rnn, bidirectional: false, weights: [w, w]) }
        expectRNNCoreError(.shapeMismatch) { _ = try RecurrentNetwork(cell: .lstm, bidirectional: false, weights: [w]) }
        expectRNNCoreError(.invalidArgument) { _ = try RecurrentNetwork(cell: .rnn, inputSize: 0, hiddenSize: 4, seed: 1) }
    }

    /// The state dict of a 2-layer bidirectional PyTorch module (D 3, H 4) under `prefix`, values irrelevant.
    static func stateDict(_ cell: CellKind, prefix: String = "") throws -> [String: Tensor] {
        try RecurrentNetwork(cell: cell, inputSize: 3, hiddenSize: 4, layers: 2, bidirectional: true, seed: 7)
            .pyTorchStateDict(prefix: prefix)
    }

    /// `#expect`s that `body` throws exactly `expected`.
    func expectImportError(_ expected: PyTorchImportError, sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: () throws -> Void) {
        let error = #expect(throws: PyTorchImportError.self, sourceLocation: sourceLocation) { try body() }
        #expect(error == expected, sourceLocation: sourceLocation)
    }

    @Test func pyTorchImportRejectsBadStateDicts() throws {
        let good = try Self.stateDict(.lstm, prefix: "lstm.")
        _ = try RecurrentNetwork(pyTorchStateDict: good, prefix: "lstm.")

        var missing = good
        missing["lstm.bias_hh_l1_reverse"] = nil
        expectImportError(.missingTensor(name: "lstm.bias_hh_l1_reverse")) {
            _ = try RecurrentNetwork(pyTorchStateDict: missing, prefix: "lstm.")
        }
        missing = good
        missing["lstm.weight_ih_l1"] = nil
        expectImportError(.missingTensor(name: "lstm.weight_ih_l1")) {
            _ = try RecurrentNetwork(pyTorchStateDict: missing, prefix: "lstm.")
        }
        expectImportError(.missingTensor(name: "rnn.weight_hh_l0")) {
            _ = try RecurrentNetwork(pyTorchStateDict: good, prefix: "rnn.")  // another prefix: nothing to read
        }

        var extra = good
        extra["lstm.running_mean"] = Tensor(zeros: [4])
        expectImportError(.unexpectedTensor(name: "lstm.running_mean")) {
            _ = try RecurrentNetwork(pyTorchStateDict: extra, prefix: "lstm.")
        }
        extra = good
        extra["lstm.weight_ih_l2"] = Tensor(zeros: [16, 8])  // a third layer with only one tensor
        expectImportError(.missingTensor(name: "lstm.weight_hh_l2")) {
            _ = try RecurrentNetwork(pyTorchStateDict: extra, prefix: "lstm.")
        }
        extra = good
        extra["decoder.weight"] = Tensor(zeros: [5, 8])  // outside the prefix: not read
        _ = try RecurrentNetwork(pyTorchStateDict: extra, prefix: "lstm.")
        expectImportError(.unexpectedTensor(name: "decoder.weight")) {
            _ = try RecurrentNetwork(pyTorchStateDict: extra)  // no prefix: every tensor must belong
        }
        expectImportError(.unexpectedTensor(name: "lstm.bias_hh_l0_reverse")) {
            _ = try RecurrentNetwork(pyTorchStateDict: good, prefix: "lstm.", bidirectional: false)
        }

        var misShaped = good
        misShaped["lstm.weight_hh_l1"] = Tensor(zeros: [16, 5])
        expectImportError(.shapeMismatch(name: "lstm.weight_hh_l1", expected: [16, 4], actual: [16, 5])) {
            _ = try RecurrentNetwork(pyTorchStateDict: misShaped, prefix: "lstm.")
        }
        misShaped = good
        misShaped["lstm.weight_ih_l1_reverse"] = Tensor(zeros: [16, 4])  // layer 1 reads 2H = 8 values
        expectImportError(.shapeMismatch(name: "lstm.weight_ih_l1_reverse", expected: [16, 8], actual: [16, 4])) {
            _ = try RecurrentNetwork(pyTorchStateDict: misShaped, prefix: "lstm.")
        }
        misShaped = good
        misShaped["lstm.bias_ih_l0"] = Tensor(zeros: [4])
        expectImportError(.shapeMismatch(name: "lstm.bias_ih_l0", expected: [16], actual: [4])) {
            _ = try RecurrentNetwork(pyTorchStateDict: misShaped, prefix: "lstm.")
        }
        expectImportError(.shapeMismatch(name: "lstm.weight_hh_l0", expected: [4, 4], actual: [16, 4])) {
            _ = try RecurrentNetwork(pyTorchStateDict: good, prefix: "lstm.", cell: .rnn)  // the wrong cell
        }

        // A GRU's (3H, H) is recognised; a gate count of no cell is not.
        let gru = try RecurrentNetwork(pyTorchStateDict: try Self.stateDict(.gru))
        #expect(gru.cell == .gru)
        var unknown = try Self.stateDict(.rnn)
        unknown["weight_hh_l0"] = Tensor(zeros: [20, 4])
        let error = #expect(throws: PyTorchImportError.self) { _ = try RecurrentNetwork(pyTorchStateDict: unknown) }
        if case .unsupported = error {} else { Issue.record("a (5H, H) module: \(String(describing: error))") }
        // Modules RNNCore does not implement.
        var projected = good
        projected["lstm.weight_hr_l0"] = Tensor(zeros: [2, 4])
        #expect(throws: PyTorchImportError.self) { _ = try RecurrentNetwork(pyTorchStateDict: projected, prefix: "lstm.") }

        // A module built with bias=False has no biases: they are zero.
        let noBias = good.filter { !$0.key.contains("bias") }
        let network = try RecurrentNetwork(pyTorchStateDict: noBias, prefix: "lstm.")
        #expect(network.parameters.filter { $0.name.hasSuffix(".b") }.allSatisfy { $0.value == Tensor(zeros: [16]) })
    }

    @Test func pyTorchFilesRejectBadContents() throws {
        let scratch = try ModelIOScratchDirectory()
        expectImportError(.unreadableFile(.fileNotFound(path: scratch.file("none.safetensors").path))) {
            _ = try RecurrentNetwork.load(pyTorchSafeTensors: scratch.file("none.safetensors"))
        }
        var file = SafeTensorsFile(tensors: try Self.stateDict(.rnn).mapValues { NamedTensor(shape: $0.shape, values: $0.scalars) })
        file.tensors["weight_hh_l1"] = NamedTensor(shape: [4, 4], values: [Int32](repeating: 0, count: 16))
        try file.write(to: scratch.file("ints.safetensors"))
        expectImportError(.dtypeMismatch(name: "weight_hh_l1", actual: "I32")) {
            _ = try RecurrentNetwork.load(pyTorchSafeTensors: scratch.file("ints.safetensors"))
        }
    }

    @Test func wordLanguageModelImportRejectsBadStateDicts() throws {
        let model = try RNNLanguageModel(configuration: .init(vocabularySize: 6, embeddingSize: 3, hiddenSize: 4,
                                                              layers: 2, cell: .rnn), seed: 3)
        let good = model.pyTorchWordLanguageModelStateDict()
        var bad = good
        bad["decoder.weight"] = Tensor(zeros: [6, 5])
        expectImportError(.shapeMismatch(name: "decoder.weight", expected: [6, 4], actual: [6, 5])) {
            _ = try RNNLanguageModel(pyTorchWordLanguageModel: bad)
        }
        bad = good
        bad["encoder.weight"] = Tensor(zeros: [6, 2])
        expectImportError(.shapeMismatch(name: "rnn.weight_ih_l0", expected: [4, 2], actual: [4, 3])) {
            _ = try RNNLanguageModel(pyTorchWordLanguageModel: bad)
        }
        bad = good
        bad["decoder.bias"] = nil
        expectImportError(.missingTensor(name: "decoder.bias")) { _ = try RNNLanguageModel(pyTorchWordLanguageModel: bad) }
        bad = good
        bad["criterion.weight"] = Tensor(zeros: [6])
        expectImportError(.unexpectedTensor(name: "criterion.weight")) {
            _ = try RNNLanguageModel(pyTorchWordLanguageModel: bad)
        }
        bad = good.filter { !$0.key.hasPrefix("rnn.") }.merging(try Self.stateDict(.rnn, prefix: "rnn.")) { $1 }
        let error = #expect(throws: PyTorchImportError.self) { _ = try RNNLanguageModel(pyTorchWordLanguageModel: bad) }
        if case .unsupported = error {} else { Issue.record("a bidirectional language model: \(String(describing: error))") }
    }

    // MARK: (e) Export → import

    @Test(arguments: CellKind.allCases, [false, true])
    func exportThenImportGivesTheSameNetwork(_ cell: CellKind, bidirectional: Bool) throws {
        let network = try RecurrentNetwork(cell: cell, inputSize: 3, hiddenSize: 5, layers: 2,
                                           bidirectional: bidirectional, seed: 17)
        let dict = network.pyTorchStateDict(prefix: "rnn.")
        let G = cell.specification.gateWidth(hiddenSize: 5)
        var names: Set<String> = []
        for l in 0..<2 {
            for suffix in bidirectional ? ["_l\(l)", "_l\(l)_reverse"] : ["_l\(l)"] {
                for kind in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] { names.insert("rnn.\(kind)\(suffix)") }
                #expect(dict["rnn.weight_ih\(suffix)"]?.shape == [G, l == 0 ? 3 : (bidirectional ? 10 : 5)])
                #expect(dict["rnn.weight_hh\(suffix)"]?.shape == [G, 5])
                if !cell.specification.hasHiddenBias { #expect(dict["rnn.bias_hh\(suffix)"] == Tensor(zeros: [G])) }
            }
        }
        #expect(Set(dict.keys) == names)

        // The relu RNN must be named: its state dict is a tanh RNN's.
        let again = try RecurrentNetwork(pyTorchStateDict: dict, prefix: "rnn.", cell: cell == .rnnRelu ? cell : nil)
        #expect(again.cell == cell && again.bidirectional == bidirectional && again.layers == 2)
        #expect(again.namedTensors == network.namedTensors)

        let scratch = try ModelIOScratchDirectory()
        try network.writePyTorchSafeTensors(to: scratch.file("module.safetensors"))
        let loaded = try RecurrentNetwork.load(pyTorchSafeTensors: scratch.file("module.safetensors"), cell: cell)
        #expect(loaded.namedTensors == network.namedTensors)
        var data = NumericsData(seed: 5)
        let xs = data.tensor([2, 3, 3])
        #expect(try loaded(xs).outputs == network(xs).outputs)
    }

    @Test(arguments: CellKind.allCases)
    func wordLanguageModelExportThenImport(_ cell: CellKind) throws {
        let model = try RNNLanguageModel(configuration: .init(vocabularySize: 9, embeddingSize: 3, hiddenSize: 4,
                                                              layers: 2, cell: cell), seed: 5)
        let dict = model.pyTorchWordLanguageModelStateDict()
        let G = cell.specification.gateWidth(hiddenSize: 4)
        #expect(dict["decoder.weight"]?.shape == [9, 4] && dict["encoder.weight"]?.shape == [9, 3])
        #expect(dict["rnn.weight_ih_l1"]?.shape == [G, 4] && dict["rnn.bias_hh_l0"]?.shape == [G])
        let again = try RNNLanguageModel(pyTorchWordLanguageModel: dict, cell: cell == .rnnRelu ? cell : nil)
        #expect(again.configuration == model.configuration)
        #expect(again.namedTensors == model.namedTensors)
    }
}
