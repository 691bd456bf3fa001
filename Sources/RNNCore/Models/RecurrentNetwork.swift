/// A stack of recurrent layers of any cell of the cell table, optionally bidirectional: what `torch.nn.RNN`
/// (tanh or relu), `torch.nn.LSTM` and `torch.nn.GRU` compute with `batch_first=True`.
///
/// Layer 0 reads the input xs (N, T, D); layer l+1 reads the output sequence of layer l, which for a bidirectional
/// network is the concatenation (N, T, 2H) of the forward direction's outputs and the reverse direction's. The
/// reverse direction runs the same kernel over the sequence reversed in time, so its output at step t has seen
/// steps t…T-1. ``forward(_:initialState:training:)`` returns the last layer's outputs (N, T, dirs·H) and the final
/// state of every layer and direction, (L·dirs, N, H), at index `l·dirs + d` (d = 1: reverse), as PyTorch orders
/// h_n and c_n.
///
/// The network keeps no state between calls: each `forward` starts from the initial state it is given (zeros
/// when nil). The layers are ordinary ``RecurrentLayer``s, ``recurrentLayers``, whose state the network
/// sets before each call. Weights use RNNCore's layout (wx = PyTorch's `weight_ih`ᵀ, wh = `weight_hh`ᵀ,
/// b = `bias_ih + bias_hh`); ``init(pyTorchStateDict:prefix:cell:bidirectional:dropout:dropoutSeed:)`` and
/// ``pyTorchStateDict(prefix:)`` translate to and from PyTorch's names.
public final class RecurrentNetwork {
    /// The state of every layer and direction: h (L·dirs, N, H) and, for an LSTM, c (L·dirs, N, H), with layer l's
    /// direction d at index `l·dirs + d`.
    public struct State: Sendable, Equatable {
        /// The hidden states, (L·dirs, N, H).
        public var h: Tensor
        /// The LSTM cell states, (L·dirs, N, H); nil for a tanh RNN.
        public var c: Tensor?

        /// Creates a state from h and, for an LSTM, c.
        public init(h: Tensor, c: Tensor? = nil) {
            self.h = h
            self.c = c
        }
    }

    /// The weights of one layer and direction, in RNNCore's layout: wx (D_l, G), wh (H, G), b (G) with G = gates·H
    /// (``CellSpecification/gates``: H for an RNN, 4H for an LSTM with gates i, f, g, o, 3H for a GRU with r, z,
    /// n), and for a cell with a hidden bias (the GRU) bh (G). D_0 = D and D_l = dirs·H above the first layer.
    public struct Weights: Sendable, Equatable {
        /// The input-to-hidden weight (D_l, G).
        public var wx: Tensor
        /// The hidden-to-hidden weight (H, G).
        public var wh: Tensor
        /// The bias (G): PyTorch's `bias_ih + bias_hh`, or `bias_ih` alone for a cell with a hidden bias.
        public var b: Tensor
        /// The hidden bias (G) of a cell that keeps one (the GRU: PyTorch's `bias_hh`); nil for the others.
        public var hiddenBias: Tensor?

        /// Creates a layer's weights.
        public init(wx: Tensor, wh: Tensor, b: Tensor, hiddenBias: Tensor? = nil) {
            self.wx = wx
            self.wh = wh
            self.b = b
            self.hiddenBias = hiddenBias
        }

        /// The tensor of a parameter role.
        func tensor(_ role: CellSpecification.Role) -> Tensor? {
            switch role {
            case .inputWeight: wx
            case .hiddenWeight: wh
            case .bias: b
            case .hiddenBias: hiddenBias
            }
        }
    }

    /// The recurrent cell of every layer.
    public let cell: CellKind
    /// D, the size of an input vector.
    public let inputSize: Int
    /// H, the size of each hidden state.
    public let hiddenSize: Int
    /// L, the number of stacked layers.
    public let layers: Int
    /// Whether every layer also runs over the reversed sequence.
    public let bidirectional: Bool
    /// The probability of zeroing an output of every layer but the last during a training `forward` (inverted
    /// dropout, as PyTorch's `dropout` argument); 0 disables it.
    public let dropout: Float
    /// Draws the dropout masks.
    public var dropoutGenerator: Xoshiro256StarStar
    /// The layer of every layer and direction, at index `l·dirs + d` (d = 1: reverse).
    public let recurrentLayers: [RecurrentLayer]
    /// Whether a `forward` without an initial state continues from the final state of the previous one (a
    /// stateful network, as a language model reading a long text window by window) instead of starting from
    /// zeros. ``resetState()`` forgets the carried state.
    public var isStateful = false
    /// In data-parallel training, which streams of the whole batch the inputs hold, so that dropout draws the masks
    /// one process would (nil: the inputs are the whole batch).
    var dropoutShard: DropoutShard?

    /// 2 for a bidirectional network, else 1.
    public var directions: Int { bidirectional ? 2 : 1 }

    /// The size of an output vector: dirs·H.
    public var outputSize: Int { directions * hiddenSize }

    /// Every trainable parameter, layer by layer, forward direction first, in the cell's order within a layer.
    public var parameters: [Parameter] { recurrentLayers.flatMap(\.parameters) }

    /// The parameters by name: `"<cell>.<l>.wx"` (and `.wh`, `.b`, …) for the forward direction,
    /// `"<cell>.<l>.reverse.wx"` for the reverse one.
    public var namedTensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.value) })
    }

    /// Backpropagate each output's error through at most this many steps inside a window (every layer); 0 (the
    /// default) is the whole window.
    public var truncation: Int {
        get { recurrentLayers[0].truncation }
        set { recurrentLayers.forEach { $0.truncation = newValue } }
    }

    /// Forgets the state every layer carries: the next `forward` starts from zeros.
    public func resetState() { recurrentLayers.forEach { $0.resetState() } }

    /// What the last `forward` saw, for `backward`.
    private struct Pass {
        let N: Int, T: Int
        /// Whether dropout masks were applied to the inputs of layers 1…L-1.
        let dropped: Bool
    }
    private var pass: Pass?

    // Buffers reused from call to call (storage kept when the shape repeats).
    private var reversedInputs: [Tensor]     // per layer: its input reversed in time (bidirectional only)
    private var directionOutputs: [Tensor]   // per layer and direction: the layer's hs, in its own time order
    private var layerOutputs: [Tensor]       // per layer: (N, T, 2H) in forward time order (bidirectional only)
    private var dropouts: [DropoutSite]      // per layer: the dropout of its input (layers 1…L-1)
    private var directionGradients: [Tensor] // per layer and direction: dhs, in the direction's time order
    private var inputGradients: [Tensor]     // per layer and direction: dxs, in the direction's time order
    private var layerInputGradients: [Tensor] // per layer: its input's gradient, both directions summed (ditto)

    /// Creates a network from the weights of every layer and direction, ordered `l·dirs + d`.
    /// - Parameters:
    ///   - cell: the recurrent cell; it fixes G and which weights a layer has.
    ///   - bidirectional: whether `weights` holds a reverse direction after each forward one.
    ///   - weights: L·dirs entries; the first gives D and H, every other must fit them.
    ///   - dropout: the dropout probability between layers while training, in [0, 1).
    ///   - dropoutSeed: the seed of ``dropoutGenerator``.
    /// - Throws: ``RNNCoreError/shapeMismatch(_:)`` when a weight does not fit (or a hidden bias is given to a
    ///   cell without one, or missing for a cell with one), ``RNNCoreError/invalidArgument(_:)`` for an empty or
    ///   odd-sized list or a dropout outside [0, 1).
    public init(cell: CellKind, bidirectional: Bool, weights: [Weights], dropout: Float = 0,
                dropoutSeed: UInt64 = 0) throws(RNNCoreError) {
        let dirs = bidirectional ? 2 : 1
        let spec = cell.specification
        guard !weights.isEmpty, weights.count % dirs == 0 else {
            throw .invalidArgument("\(weights.count) layer weights cannot form layers of \(dirs) direction(s)")
        }
        guard dropout >= 0, dropout < 1 else { throw .invalidArgument("dropout \(dropout) outside [0, 1)") }
        let first = weights[0]
        guard first.wx.shape.count == 2, first.wh.shape.count == 2, first.wx.shape[0] > 0, first.wh.shape[0] > 0 else {
            throw .shapeMismatch("layer 0 weights wx \(first.wx.shape) and wh \(first.wh.shape) must be (D, G) and (H, G) with D, H > 0")
        }
        let (D, H) = (first.wx.shape[0], first.wh.shape[0])
        var built: [RecurrentLayer] = []
        for (k, w) in weights.enumerated() {
            let (l, d) = (k / dirs, k % dirs)
            let name = "\(cell.rawValue).\(l)" + (d == 1 ? ".reverse" : "")
            let width = l == 0 ? D : dirs * H
            guard w.wx.shape.first == width, w.wh.shape.first == H else {
                throw .shapeMismatch("\(name) has wx \(w.wx.shape) and wh \(w.wh.shape), expected (\(width), G) and (\(H), G)")
            }
            guard (w.hiddenBias != nil) == spec.hasHiddenBias else {
                throw .shapeMismatch("\(name): a \(spec.displayName) \(spec.hasHiddenBias ? "needs" : "has no") hidden bias")
            }
            // Stateful so that it starts from the state set before each call; the network sets it every time.
            built.append(try RecurrentLayer(cell: cell, weights: spec.parameters.map { w.tensor($0.role)! },
                                            stateful: true, name: name))
        }
        self.cell = cell
        self.inputSize = D
        self.hiddenSize = H
        self.layers = weights.count / dirs
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.dropoutGenerator = Xoshiro256StarStar(seed: dropoutSeed)
        self.recurrentLayers = built
        let empty = Tensor(zeros: [0])
        reversedInputs = Array(repeating: empty, count: layers)
        directionOutputs = Array(repeating: empty, count: built.count)
        layerOutputs = Array(repeating: empty, count: layers)
        dropouts = Array(repeating: DropoutSite(), count: layers)
        directionGradients = Array(repeating: empty, count: built.count)
        inputGradients = Array(repeating: empty, count: built.count)
        layerInputGradients = Array(repeating: empty, count: layers)
    }

    /// Creates a network with PyTorch's initialisation, drawn from a seeded generator: every weight uniform in
    /// ±1/√H, every bias the sum of two such draws where PyTorch adds `bias_ih + bias_hh` into it, else one.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for a size or layer count below 1 or a dropout outside [0, 1).
    public convenience init(cell: CellKind, inputSize: Int, hiddenSize: Int, layers: Int = 1,
                            bidirectional: Bool = false, dropout: Float = 0, seed: UInt64) throws(RNNCoreError) {
        guard inputSize > 0, hiddenSize > 0, layers > 0 else {
            throw .invalidArgument("input size \(inputSize), hidden size \(hiddenSize) and layers \(layers) must be positive")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        let (H, dirs, spec) = (hiddenSize, bidirectional ? 2 : 1, cell.specification)
        let bound = 1 / Float(H).squareRoot()
        func uniform(_ shape: [Int], draws: Int) -> Tensor {
            var t = Tensor(zeros: shape)
            t.withUnsafeMutableBufferPointer { p in
                for i in p.indices {
                    for _ in 0..<draws { p[i] += (2 * rng.nextFloat() - 1) * bound }
                }
            }
            return t
        }
        var weights: [Weights] = []
        for l in 0..<layers {
            for _ in 0..<dirs {
                var tensors: [CellSpecification.Role: Tensor] = [:]
                for p in spec.parameters {
                    let draws = p.role == .bias && !spec.hasHiddenBias ? 2 : 1
                    tensors[p.role] = uniform(p.shape(inputSize: l == 0 ? inputSize : dirs * H, hiddenSize: H,
                                                      gateWidth: spec.gateWidth(hiddenSize: H)), draws: draws)
                }
                weights.append(Weights(wx: tensors[.inputWeight]!, wh: tensors[.hiddenWeight]!, b: tensors[.bias]!,
                                       hiddenBias: tensors[.hiddenBias]))
            }
        }
        try self.init(cell: cell, bidirectional: bidirectional, weights: weights, dropout: dropout,
                      dropoutSeed: seed &+ 0x5EED)
    }

    /// The weights of every layer and direction, ordered `l·dirs + d` (copies of the current values).
    public var weights: [Weights] {
        recurrentLayers.map { layer in
            Weights(wx: layer.wx.value, wh: layer.wh.value, b: layer.b.value,
                    hiddenBias: layer.parameter(.hiddenBias)?.value)
        }
    }

    // MARK: Forward

    /// Runs the network without dropout: ``forward(_:initialState:training:)``.
    public func callAsFunction(_ xs: Tensor,
                               initialState: State? = nil) throws(RNNCoreError) -> (outputs: Tensor, finalState: State) {
        try forward(xs, initialState: initialState)
    }

    /// Runs every layer and direction over xs (N, T, D).
    /// - Parameters:
    ///   - xs: the input sequences, batch first.
    ///   - initialState: h0 (and c0 for an LSTM), each (L·dirs, N, H); nil starts every layer from zeros, or, for
    ///     a network that ``isStateful``, from where the previous `forward` ended.
    ///   - training: whether to apply ``dropout`` between layers (masks drawn from ``dropoutGenerator``).
    /// - Returns: the last layer's outputs (N, T, dirs·H) and the final states h_n (and c_n), (L·dirs, N, H).
    /// - Throws: ``RNNCoreError/shapeMismatch(_:)`` for xs of another width, an empty xs, or an initial state of
    ///   another shape; ``RNNCoreError/invalidArgument(_:)`` for a missing c0 of an LSTM or a c0 given to another
    ///   cell.
    public func forward(_ xs: Tensor, initialState: State? = nil,
                        training: Bool = false) throws(RNNCoreError) -> (outputs: Tensor, finalState: State) {
        let outputs = try run(xs, initialState: initialState, training: training)
        return (outputs, try gather(recurrentLayers.map { $0.state! }))
    }

    /// ``forward(_:initialState:training:)`` without building the final state: the outputs (N, T, dirs·H) are the
    /// network's own buffer, reused by the next call (drop them before it to avoid a copy).
    func run(_ xs: Tensor, initialState: State?, training: Bool) throws(RNNCoreError) -> Tensor {
        guard xs.shape.count == 3, xs.shape[2] == inputSize, xs.shape[0] > 0, xs.shape[1] > 0 else {
            throw .shapeMismatch("input has shape \(xs.shape), expected (N, T, \(inputSize)) with N, T > 0")
        }
        let (N, T, H, dirs) = (xs.shape[0], xs.shape[1], hiddenSize, directions)
        let initial = try validate(initialState, batch: N, "initial state")
        releaseCache()  // the layers' references to the last call's buffers would force copies
        pass = nil
        let dropped = training && dropout > 0 && layers > 1
        if let initial {
            for (k, layer) in recurrentLayers.enumerated() { try layer.setState(Self.layerState(initial, at: k)) }
        } else if !isStateful {
            resetState()
        }

        var input = xs
        for l in 0..<layers {
            if l > 0 && dropped { input = dropouts[l].apply(input, probability: dropout, generator: &dropoutGenerator,
                                                                   shard: dropoutShard) }
            if bidirectional { Self.reverseTime(input, into: &reversedInputs[l]) }
            for d in 0..<dirs {
                let k = l * dirs + d
                try recurrentLayers[k].forward(d == 0 ? input : reversedInputs[l], into: &directionOutputs[k])
            }
            if bidirectional {
                layerOutputs[l].prepare(N, T, 2 * H)
                Self.copyColumns(from: directionOutputs[l * 2], offset: 0, to: &layerOutputs[l], offset: 0,
                                 width: H, reversed: false, accumulate: false)
                Self.copyColumns(from: directionOutputs[l * 2 + 1], offset: 0, to: &layerOutputs[l], offset: H,
                                 width: H, reversed: true, accumulate: false)
                input = layerOutputs[l]
            } else {
                input = directionOutputs[l]
            }
        }
        pass = Pass(N: N, T: T, dropped: dropped)
        return input
    }

    // MARK: Backward

    /// Backpropagates through the last ``forward(_:initialState:training:)``: accumulates every parameter's
    /// gradient and returns the gradients of the input and of the initial state.
    /// - Parameters:
    ///   - dOutputs: ∂L/∂outputs, (N, T, dirs·H).
    ///   - finalStateGradient: ∂L/∂h_n (and ∂L/∂c_n for an LSTM, nil meaning zeros), each (L·dirs, N, H); nil
    ///     when the loss does not depend on the final state.
    /// - Returns: dxs (N, T, D) and ∂L/∂h0 (and ∂L/∂c0), each (L·dirs, N, H); these are the gradients with respect
    ///   to the initial state whether it was given or was zeros.
    /// - Throws: ``RNNCoreError/invalidState(_:)`` before any `forward`, ``RNNCoreError/shapeMismatch(_:)`` for
    ///   gradients of other shapes, ``RNNCoreError/invalidArgument(_:)`` for a c gradient given to a cell without
    ///   one.
    public func backward(_ dOutputs: Tensor, finalStateGradient: State? = nil)
        throws(RNNCoreError) -> (dxs: Tensor, initialStateGradient: State) {
        let dxs = try backpropagate(dOutputs, finalStateGradient: finalStateGradient)
        return (dxs, try gather(recurrentLayers.map { $0.initialStateGradient! }))
    }

    /// ``backward(_:finalStateGradient:)`` without gathering the initial-state gradients: dxs is the network's own
    /// buffer, reused by the next call.
    func backpropagate(_ dOutputs: Tensor, finalStateGradient: State?) throws(RNNCoreError) -> Tensor {
        guard let pass else { throw .invalidState("recurrent network backward before forward") }
        let (N, T, H, dirs) = (pass.N, pass.T, hiddenSize, directions)
        guard dOutputs.shape == [N, T, dirs * H] else {
            throw .shapeMismatch("output gradient has shape \(dOutputs.shape), expected [\(N), \(T), \(dirs * H)]")
        }
        let final = try validate(finalStateGradient, batch: N, "final-state gradient", laterStatesOptional: true)

        var dOutput = dOutputs
        for l in stride(from: layers - 1, through: 0, by: -1) {
            for d in 0..<dirs {
                let k = l * dirs + d
                var gradient = dOutput
                if bidirectional {
                    directionGradients[k].prepare(N, T, H)
                    Self.copyColumns(from: dOutput, offset: d * H, to: &directionGradients[k], offset: 0, width: H,
                                     reversed: d == 1, accumulate: false)
                    gradient = directionGradients[k]
                }
                let stateGradient = final.map { Self.layerState($0, at: k, count: cell.specification.stateCount) }
                try recurrentLayers[k].backward(gradient, finalStateGradient: stateGradient, into: &inputGradients[k])
            }
            if bidirectional {
                let width = l == 0 ? inputSize : dirs * H
                layerInputGradients[l].prepare(N, T, width)
                Self.copyColumns(from: inputGradients[l * 2], offset: 0, to: &layerInputGradients[l], offset: 0,
                                 width: width, reversed: false, accumulate: false)
                Self.copyColumns(from: inputGradients[l * 2 + 1], offset: 0, to: &layerInputGradients[l], offset: 0,
                                 width: width, reversed: true, accumulate: true)
                if l > 0 && pass.dropped { dropouts[l].backward(&layerInputGradients[l]) }
                dOutput = layerInputGradients[l]
            } else {
                if l > 0 && pass.dropped { dropouts[l].backward(&inputGradients[l]) }
                dOutput = inputGradients[l]
            }
        }
        return dOutput
    }

    /// Drops what the layers kept for `backward`, so that the buffers it came from can be reused in place.
    public func releaseCache() { recurrentLayers.forEach { $0.releaseCache() } }

    /// The activation buffers the network keeps between calls (not its layers'), for tests that check reuse.
    var buffers: [Tensor] {
        reversedInputs + directionOutputs + layerOutputs + dropouts.flatMap { [$0.mask, $0.output] }
            + directionGradients + inputGradients + layerInputGradients
    }

    /// The floats of every buffer of the network and its layers, for tests that check memory estimates.
    var bufferScalarCount: Int {
        buffers.reduce(0) { $0 + $1.count } + recurrentLayers.reduce(0) { $0 + $1.bufferScalarCount }
    }

    // MARK: Helpers

    /// Checks a state (or state gradient) for N streams: returns its S components (h, then an LSTM's c), each
    /// (L·dirs, N, H), or nil for no state. With `laterStatesOptional`, an LSTM's c may be missing (the caller
    /// treats it as zeros).
    private func validate(_ state: State?, batch N: Int, _ what: String,
                          laterStatesOptional: Bool = false) throws(RNNCoreError) -> [Tensor]? {
        guard let state else { return nil }
        let spec = cell.specification
        let expected = [layers * directions, N, hiddenSize]
        guard state.h.shape == expected else {
            throw .shapeMismatch("\(what) h has shape \(state.h.shape), expected \(expected) (L·dirs, N, H)")
        }
        guard let c = state.c else {
            guard spec.stateCount == 1 || laterStatesOptional else {
                throw .invalidArgument("\(what) of an \(spec.displayName) needs c as well as h")
            }
            return [state.h]
        }
        guard spec.stateCount == 2 else {
            throw .invalidArgument("\(what) has a cell state c, but a \(spec.displayName) has none")
        }
        guard c.shape == expected else {
            throw .shapeMismatch("\(what) c has shape \(c.shape), expected \(expected) (L·dirs, N, H)")
        }
        return [state.h, c]
    }

    /// Layer k's state (S, N, H) from the components (each (L·dirs, N, H)); components missing at the end (an
    /// LSTM's c gradient) are zeros.
    private static func layerState(_ components: [Tensor], at k: Int, count S: Int? = nil) -> Tensor {
        let (n, h) = (components[0].shape[1], components[0].shape[2])
        var out = Tensor(zeros: [S ?? components.count, n, h])
        let target = out.writePointer()
        for (i, t) in components.enumerated() {
            withExtendedLifetime(t) { (target + i * n * h).update(from: t.readPointer + k * n * h, count: n * h) }
        }
        return out
    }

    /// The State of per-layer states (each (S, N, H)), ordered `l·dirs + d`.
    private func gather(_ states: [Tensor]) throws(RNNCoreError) -> State {
        let (S, N, H) = (states[0].shape[0], states[0].shape[1], states[0].shape[2])
        var components = Array(repeating: Tensor(zeros: [states.count, N, H]), count: S)
        for i in 0..<S {
            let target = components[i].writePointer()
            for (k, s) in states.enumerated() {
                withExtendedLifetime(s) { (target + k * N * H).update(from: s.readPointer + i * N * H, count: N * H) }
            }
        }
        return State(h: components[0], c: S > 1 ? components[1] : nil)
    }

    /// xs (N, T, C) reversed along T into `reversed`.
    private static func reverseTime(_ xs: Tensor, into reversed: inout Tensor) {
        reversed.prepare(like: xs)
        copyColumns(from: xs, offset: 0, to: &reversed, offset: 0, width: xs.shape[2], reversed: true,
                    accumulate: false)
    }

    /// For every stream n and step t: `target[n, t', targetOffset ..< +width]` = (or +=)
    /// `source[n, t, sourceOffset ..< +width]`, with t' = T-1-t when `reversed`, else t. Both are (N, T, ·).
    private static func copyColumns(from source: Tensor, offset sourceOffset: Int, to target: inout Tensor,
                                    offset targetOffset: Int, width: Int, reversed: Bool, accumulate: Bool) {
        let (N, T, sourceWidth, targetWidth) = (source.shape[0], source.shape[1], source.shape[2], target.shape[2])
        let out = target.writePointer()
        withExtendedLifetime(source) {
            let input = source.readPointer
            for n in 0..<N {
                for t in 0..<T {
                    let from = input + (n * T + t) * sourceWidth + sourceOffset
                    let to = out + (n * T + (reversed ? T - 1 - t : t)) * targetWidth + targetOffset
                    if accumulate {
                        for j in 0..<width { to[j] += from[j] }
                    } else {
                        to.update(from: from, count: width)
                    }
                }
            }
        }
    }
}
