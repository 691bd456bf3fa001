import CRNNCore

/// A recurrent layer over windows of T steps, for any cell of the cell table (``CellKind``): the TimeRNN layer
/// of the textbook, and what stacked, bidirectional and language models build on.
///
/// A layer maps xs (N, T, D) to hs (N, T, H) with one call of its cell's C kernels. With ``isStateful`` (the
/// default) the state it ends a window in, ``carriedState``, is where the next window starts, so a long text can
/// be processed window by window (truncated BPTT); `backward` stops at the window's start, or earlier with
/// ``truncation``. ``resetState()`` starts again from zeros. The weights use RNNCore's layout: wx (D, G) is
/// PyTorch's `weight_ih`ᵀ, wh (H, G) its `weight_hh`ᵀ, with G = gates·H (``CellSpecification/gates``).
public final class RecurrentLayer {
    /// The layer's cell.
    public let cell: CellKind
    /// The cell's description.
    public let specification: CellSpecification
    /// The parameters, in the cell's order (``CellSpecification/parameters``): wx, wh, b, then any others.
    public let parameters: [Parameter]
    /// D, the input size.
    public let inputSize: Int
    /// H, the hidden size.
    public let hiddenSize: Int
    /// Whether the state is carried from one `forward` to the next.
    public var isStateful: Bool
    /// Backpropagate each output's error through at most this many steps inside a window; 0 (the default) is the
    /// whole window. A value of T or more is the same as 0.
    public var truncation: Int = 0
    /// The state after the last `forward`, (S, N, H) with S = ``CellSpecification/stateCount`` (h, then an LSTM's
    /// c), or nil after ``resetState()``.
    public private(set) var state: Tensor?
    /// ∂L/∂(initial state) from the last `backward`, (S, N, H).
    public private(set) var initialStateGradient: Tensor?

    private var cache: (xs: Tensor, state0: Tensor?, hs: Tensor)?
    private var kernelCache = Tensor(zeros: [0])
    private var workspace: [Float] = []
    private var spareState: Tensor?

    /// Creates a layer from its weights, in the cell's parameter order: wx (D, G), wh (H, G), b (G), and for a
    /// cell with a hidden bias (the GRU) bh (G).
    /// - Parameters:
    ///   - cell: the cell of the table (``CellKind``).
    ///   - weights: wx, wh, b (and bh for the GRU), as above.
    ///   - stateful: whether the state carries from one window to the next (see ``resetState()``).
    ///   - name: the prefix of the parameter names (`"<name>.wx"`, …).
    /// - Throws: ``RNNCoreError/shapeMismatch(_:)`` when a weight does not fit the others or the cell.
    public init(cell: CellKind, weights: [Tensor], stateful: Bool = true, name: String? = nil) throws(RNNCoreError) {
        let spec = cell.specification
        let name = name ?? cell.rawValue
        guard weights.count == spec.parameters.count else {
            throw .shapeMismatch("\(name) needs \(spec.parameters.count) weight tensors (\(spec.parameters.map(\.name).joined(separator: ", "))), got \(weights.count)")
        }
        let wh = weights[spec.parameters.firstIndex { $0.role == .hiddenWeight }!]
        let wx = weights[spec.parameters.firstIndex { $0.role == .inputWeight }!]
        guard wh.shape.count == 2, wh.shape[0] > 0, wh.shape[1] == spec.gateWidth(hiddenSize: wh.shape[0]) else {
            throw .shapeMismatch("\(name) wh must be (H, \(spec.gates == 1 ? "H" : "\(spec.gates)H")) for a \(spec.displayName), got \(wh.shape)")
        }
        guard wx.shape.count == 2, wx.shape[0] > 0 else {
            throw .shapeMismatch("\(name) wx must be (D, G) with D > 0, got \(wx.shape)")
        }
        let (D, H) = (wx.shape[0], wh.shape[0])
        var parameters: [Parameter] = []
        for (p, w) in zip(spec.parameters, weights) {
            try w.expectShape(p.shape(inputSize: D, hiddenSize: H, gateWidth: spec.gateWidth(hiddenSize: H)),
                              "\(name) \(p.name)")
            parameters.append(Parameter(name: "\(name).\(p.name)", value: w))
        }
        self.cell = cell
        self.specification = spec
        self.parameters = parameters
        self.inputSize = D
        self.hiddenSize = H
        self.isStateful = stateful
    }

    /// Creates a layer of a cell with three parameters (every cell but the GRU): wx (D, G), wh (H, G), b (G).
    public convenience init(cell: CellKind, wx: Tensor, wh: Tensor, b: Tensor, stateful: Bool = true,
                            name: String? = nil) throws(RNNCoreError) {
        try self.init(cell: cell, weights: [wx, wh, b], stateful: stateful, name: name)
    }

    /// The parameter with a role, if the cell has one.
    public func parameter(_ role: CellSpecification.Role) -> Parameter? {
        specification.parameters.firstIndex { $0.role == role }.map { parameters[$0] }
    }

    /// The (D, G) input weight.
    public var wx: Parameter { parameter(.inputWeight)! }
    /// The (H, G) recurrent weight.
    public var wh: Parameter { parameter(.hiddenWeight)! }
    /// The (G) bias.
    public var b: Parameter { parameter(.bias)! }

    /// The carried state as S separate (N, H) tensors (`[h]`, or `[h, c]` for an LSTM); empty after
    /// ``resetState()``.
    public var carriedState: [Tensor] { state.map(Self.split) ?? [] }

    /// ``initialStateGradient`` as S separate (N, H) tensors.
    public var initialStateGradients: [Tensor] { initialStateGradient.map(Self.split) ?? [] }

    /// Sets the state the next `forward` starts from: S tensors of (N, H), or none to reset it.
    public func setCarriedState(_ state: [Tensor]) throws(RNNCoreError) {
        if state.isEmpty { return resetState() }
        try setState(Self.stack(state, count: specification.stateCount, hidden: hiddenSize, "\(cell.rawValue) state"))
    }

    /// Sets the state the next `forward` starts from, (S, N, H); nil resets it.
    public func setState(_ state: Tensor?) throws(RNNCoreError) {
        guard let state else { return resetState() }
        let S = specification.stateCount
        guard state.shape.count == 3, state.shape[0] == S, state.shape[1] > 0, state.shape[2] == hiddenSize else {
            throw .shapeMismatch("\(cell.rawValue) state has shape \(state.shape), expected [\(S), N, \(hiddenSize)]")
        }
        self.state = state
    }

    /// Forgets the state: the next `forward` starts from zeros.
    public func resetState() {
        spareState = spareState ?? state
        state = nil
    }

    /// Runs the window: xs (N, T, D) gives every hidden state hs (N, T, H).
    public func forward(_ xs: Tensor) throws(RNNCoreError) -> Tensor {
        var hs = Tensor(zeros: [])
        try forward(xs, into: &hs)
        return hs
    }

    /// Runs the window over xs (N, T, D), writing every hidden state (N, T, H) into `hs` (storage reused when it
    /// already has that shape and is not shared).
    public func forward(_ xs: Tensor, into hs: inout Tensor) throws(RNNCoreError) {
        guard xs.shape.count == 3, xs.shape[2] == inputSize, xs.count > 0 else {
            throw .shapeMismatch("\(cell.rawValue) input has shape \(xs.shape), expected (N, T, \(inputSize))")
        }
        let (N, T, H, S) = (xs.shape[0], xs.shape[1], hiddenSize, specification.stateCount)
        var state0 = isStateful ? state : nil
        if let s = state0, s.shape[1] != N { state0 = nil }  // the batch size changed: new streams start from zeros
        let window = rnncore_window(N: Int64(N), T: Int64(T), D: Int64(inputSize), H: Int64(H), truncation: 0)
        guard let sizes = specification.bufferSizes(window) else {
            throw .invalidArgument("\(cell.rawValue) window N \(N), T \(T), D \(inputSize), H \(H) is too large")
        }
        if cache != nil { releaseCache() }
        hs.prepare(N, T, H)
        kernelCache.prepare(sizes.cache, 1)
        // The new state goes into the spare buffer; the old one stays intact as state0 for backward.
        var stateLast = spareState ?? Tensor(zeros: [S, N, H])
        spareState = nil
        stateLast.prepare(S, N, H)
        let status = withExtendedLifetime(state0) {
            withWeights { weights in
                var w = window
                return specification.kernels.forward(hs.writePointer(), kernelCache.writePointer(),
                                                     stateLast.writePointer(), xs.readPointer, state0?.readPointer,
                                                     weights, &w)
            }
        }
        if status != RNNCORE_OK { spareState = stateLast }
        try check(status, "\(cell.rawValue) forward")
        cache = (xs, state0, hs)
        spareState = state
        state = stateLast
    }

    /// Backpropagates through the last window: dhs (N, T, H) gives dxs (N, T, D); parameter gradients are
    /// accumulated and ∂L/∂(initial state) goes to ``initialStateGradient``.
    /// - Parameters:
    ///   - dhs: ∂L/∂(outputs), (N, T, H).
    ///   - finalStateGradient: an extra gradient flowing into the final state from later, (S, N, H), or nil.
    ///   - dxs: receives ∂L/∂(inputs), (N, T, D).
    public func backward(_ dhs: Tensor, finalStateGradient: Tensor?, into dxs: inout Tensor) throws(RNNCoreError) {
        guard truncation >= 0 else { throw .invalidArgument("truncation must be 0 or positive, got \(truncation)") }
        guard let (xs, state0, hs) = cache else { throw .invalidState("\(cell.rawValue) backward before forward") }
        let (N, T, H, S) = (xs.shape[0], xs.shape[1], hiddenSize, specification.stateCount)
        guard dhs.hasShape(like: hs, last: H) else {
            throw .shapeMismatch("\(cell.rawValue) output gradient has shape \(dhs.shape), expected \(hs.shape)")
        }
        if let g = finalStateGradient, g.shape != [S, N, H] {
            throw .shapeMismatch("\(cell.rawValue) final-state gradient has shape \(g.shape), expected [\(S), \(N), \(H)]")
        }
        let window = rnncore_window(N: Int64(N), T: Int64(T), D: Int64(inputSize), H: Int64(H),
                                    truncation: Int64(truncation))
        guard let sizes = specification.bufferSizes(window) else {
            throw .invalidArgument("\(cell.rawValue) window N \(N), T \(T), H \(H), truncation \(truncation) is too large")
        }
        if workspace.count < sizes.workspace { workspace = [Float](repeating: 0, count: sizes.workspace) }
        dxs.prepare(like: xs)
        var dState0 = initialStateGradient ?? Tensor(zeros: [S, N, H])
        initialStateGradient = nil
        dState0.prepare(S, N, H)
        var gradients = rnncore_cell_gradients(
            dwx: wx.gradient.writePointer(), dwh: wh.gradient.writePointer(), db: b.gradient.writePointer(),
            db_hidden: parameter(.hiddenBias)?.gradient.writePointer())
        let status = workspace.withUnsafeMutableBufferPointer { ws in
            withExtendedLifetime(finalStateGradient) {
                withWeights { weights in
                    var w = window
                    return specification.kernels.backward(
                        dxs.writePointer(), dState0.writePointer(), &gradients, ws.baseAddress, dhs.readPointer,
                        finalStateGradient?.readPointer, xs.readPointer, state0?.readPointer, hs.readPointer,
                        kernelCache.readPointer, weights, &w)
                }
            }
        }
        initialStateGradient = dState0
        try check(status, "\(cell.rawValue) backward")
    }

    /// Backpropagates through the last window; `finalStateGradient` is S (N, H) tensors (`[∂L/∂h_last]`, or
    /// `[∂L/∂h_last, ∂L/∂c_last]`), or empty for none.
    public func backward(_ dhs: Tensor, finalStateGradient: [Tensor] = [], into dxs: inout Tensor) throws(RNNCoreError) {
        let stacked = finalStateGradient.isEmpty
            ? nil
            : try Self.stack(finalStateGradient, count: specification.stateCount, hidden: hiddenSize,
                             "\(cell.rawValue) final-state gradient")
        try backward(dhs, finalStateGradient: stacked, into: &dxs)
    }

    /// Backpropagates through the last window and returns dxs (N, T, D); `finalStateGradient` is S (N, H)
    /// tensors, or empty (the default) for no gradient from later windows.
    public func backward(_ dhs: Tensor, finalStateGradient: [Tensor] = []) throws(RNNCoreError) -> Tensor {
        var dxs = Tensor(zeros: [])
        try backward(dhs, finalStateGradient: finalStateGradient, into: &dxs)
        return dxs
    }

    /// Drops what forward kept for `backward`, so that the buffers it came from can be reused in place.
    public func releaseCache() { cache = nil }

    /// The floats of every buffer the layer owns (states, their spare, the state gradient, the kernel cache and
    /// workspace), for tests that check memory estimates.
    var bufferScalarCount: Int {
        [state, spareState, initialStateGradient, kernelCache].reduce(workspace.count) { $0 + ($1?.count ?? 0) }
    }

    /// Calls `body` with the C description of the weights.
    private func withWeights(_ body: (UnsafePointer<rnncore_cell_weights>) -> rnncore_status) -> rnncore_status {
        let hiddenBias = parameter(.hiddenBias)
        return withExtendedLifetime(parameters) {
            var weights = rnncore_cell_weights(wx: wx.value.readPointer, wh: wh.value.readPointer,
                                               b: b.value.readPointer, b_hidden: hiddenBias?.value.readPointer)
            return body(&weights)
        }
    }

    /// S tensors of (N, H) stacked into one (S, N, H) tensor.
    static func stack(_ tensors: [Tensor], count S: Int, hidden H: Int, _ what: String) throws(RNNCoreError) -> Tensor {
        guard tensors.count == S else { throw .shapeMismatch("\(what) has \(tensors.count) tensors, expected \(S)") }
        let N = tensors[0].shape.first ?? 0
        for t in tensors where !(t.hasShape(N, H) && N > 0) {
            throw .shapeMismatch("\(what) has shape \(t.shape), expected [\(N > 0 ? N : 1), \(H)] (N, H)")
        }
        var out = Tensor(zeros: [S, N, H])
        let target = out.writePointer()
        for (i, t) in tensors.enumerated() {
            withExtendedLifetime(t) { (target + i * N * H).update(from: t.readPointer, count: N * H) }
        }
        return out
    }

    /// An (S, N, H) tensor as S separate (N, H) tensors.
    static func split(_ stacked: Tensor) -> [Tensor] {
        let (S, N, H) = (stacked.shape[0], stacked.shape[1], stacked.shape[2])
        return (0..<S).map { i in
            var t = Tensor(zeros: [N, H])
            withExtendedLifetime(stacked) { t.writePointer().update(from: stacked.readPointer + i * N * H, count: N * H) }
            return t
        }
    }
}
