import CRNNCore

/// A long short-term memory layer over a window of T steps.
///
/// The four gates come from one fused product with concatenated weights, in PyTorch's order i, f, g, o:
/// `a = x·Wx + h·Wh + b`, `i, f, o = σ(a_i, a_f, a_o)`, `g = tanh(a_g)`, `c' = f⊙c + i⊙g`, `h' = o⊙tanh(c')`.
/// With `isStateful` (the default) the hidden and cell states of one `forward` start the next; `backward` stops
/// at the window's start (or earlier with ``truncation``). ``resetState()`` starts again from zeros.
public final class LSTM: RecurrentLayer {
    /// The (D, 4H) input-to-gates weight (PyTorch's `weight_ih` transposed).
    public let wx: Parameter
    /// The (H, 4H) hidden-to-gates weight (PyTorch's `weight_hh` transposed).
    public let wh: Parameter
    /// The (4H) gate bias (PyTorch's `bias_ih + bias_hh`).
    public let b: Parameter
    /// D, the input size.
    public var inputSize: Int { wx.shape[0] }
    /// H, the hidden size.
    public var hiddenSize: Int { wh.shape[0] }
    /// Whether the states are carried from one `forward` to the next.
    public var isStateful: Bool
    /// Backpropagate each output's error through at most this many steps inside a window (0: the whole window).
    public var truncation: Int = 0
    /// The hidden state (N, H) after the last `forward`, or nil after ``resetState()``.
    public private(set) var hiddenState: Tensor?
    /// The cell state (N, H) after the last `forward`, or nil after ``resetState()``.
    public private(set) var cellState: Tensor?
    /// `[∂L/∂h0, ∂L/∂c0]` from the last `backward`.
    public private(set) var initialStateGradients: [Tensor] = []

    private struct Cache {
        var xs: Tensor, h0: Tensor?, c0: Tensor?, hs: Tensor, cs: Tensor, gates: Tensor
    }
    private var cache: Cache?
    private var cs = Tensor(zeros: [0])
    private var gates = Tensor(zeros: [0])
    private var workspace: [Float] = []
    private var spare: (h: Tensor, c: Tensor)?

    /// Creates a layer from its weights: wx (D, 4H), wh (H, 4H), b (4H).
    public init(wx: Tensor, wh: Tensor, b: Tensor, stateful: Bool = true, name: String = "lstm") throws(RNNCoreError) {
        guard wh.shape.count == 2, wh.shape[1] == 4 * wh.shape[0], wh.shape[0] > 0 else {
            throw .shapeMismatch("lstm wh must be (H, 4H), got \(wh.shape)")
        }
        let H = wh.shape[0]
        guard wx.shape.count == 2, wx.shape[1] == 4 * H else {
            throw .shapeMismatch("lstm wx must be (D, \(4 * H)), got \(wx.shape)")
        }
        try b.expectShape([4 * H], "lstm b")
        self.wx = Parameter(name: "\(name).wx", value: wx)
        self.wh = Parameter(name: "\(name).wh", value: wh)
        self.b = Parameter(name: "\(name).b", value: b)
        self.isStateful = stateful
    }

    /// The parameters, in a fixed order.
    public var parameters: [Parameter] { [wx, wh, b] }

    /// `[hiddenState, cellState]`, or empty after ``resetState()``.
    public var carriedState: [Tensor] {
        guard let h = hiddenState, let c = cellState else { return [] }
        return [h, c]
    }

    /// Sets the states from `[h, c]`, each (N, H); an empty array resets them.
    public func setCarriedState(_ state: [Tensor]) throws(RNNCoreError) {
        try validateState(state, count: 2, batch: state.first?.shape.first, hidden: hiddenSize, "lstm state")
        if state.isEmpty {
            resetState()
        } else {
            hiddenState = state[0]
            cellState = state[1]
        }
    }

    /// Forgets the states: the next `forward` starts from zeros.
    public func resetState() {
        if spare == nil, let h = hiddenState, let c = cellState { spare = (h, c) }
        hiddenState = nil
        cellState = nil
    }

    /// Runs the window: xs (N, T, D) gives every hidden state hs (N, T, H).
    public func forward(_ xs: Tensor) throws(RNNCoreError) -> Tensor {
        var hs = Tensor(zeros: [])
        try forward(xs, into: &hs)
        return hs
    }

    public func forward(_ xs: Tensor, into hs: inout Tensor) throws(RNNCoreError) {
        guard xs.shape.count == 3, xs.shape[2] == inputSize, xs.count > 0 else {
            throw .shapeMismatch("lstm input has shape \(xs.shape), expected (N, T, \(inputSize))")
        }
        let (N, T, D, H) = (xs.shape[0], xs.shape[1], inputSize, hiddenSize)
        var h0 = isStateful ? hiddenState : nil
        var c0 = isStateful ? cellState : nil
        if let h = h0, !h.hasShape(N, H) {
            h0 = nil  // the batch size changed: a new set of streams starts from zeros
            c0 = nil
        }
        hs.prepare(N, T, H)
        if cache != nil { releaseCache() }
        cs.prepare(N, T, H)
        gates.prepare(N, T, 4 * H)
        // The new states go into spare buffers; the old ones stay intact as h0, c0 for backward.
        var (hLast, cLast) = spare ?? (Tensor(zeros: [N, H]), Tensor(zeros: [N, H]))
        spare = nil
        hLast.prepare(N, H)
        cLast.prepare(N, H)
        let status = withExtendedLifetime((h0, c0)) {
            rnncore_lstm_forward(hs.writePointer(), cs.writePointer(), gates.writePointer(), hLast.writePointer(),
                                 cLast.writePointer(), xs.readPointer, h0?.readPointer, c0?.readPointer,
                                 wx.value.readPointer, wh.value.readPointer, b.value.readPointer,
                                 Int64(N), Int64(T), Int64(D), Int64(H))
        }
        if status != RNNCORE_OK { spare = (hLast, cLast) }
        try check(status, "lstm forward")
        cache = Cache(xs: xs, h0: h0, c0: c0, hs: hs, cs: cs, gates: gates)
        if let h = hiddenState, let c = cellState { spare = (h, c) }
        hiddenState = hLast
        cellState = cLast
    }

    /// Backpropagates through the last window: dhs (N, T, H) gives dxs (N, T, D); dWx, dWh, db are accumulated.
    public func backward(_ dhs: Tensor) throws(RNNCoreError) -> Tensor {
        var dxs = Tensor(zeros: [])
        try backward(dhs, finalStateGradient: [], into: &dxs)
        return dxs
    }

    public func backward(_ dhs: Tensor, finalStateGradient: [Tensor], into dxs: inout Tensor) throws(RNNCoreError) {
        guard let c = cache else { throw .invalidState("lstm backward before forward") }
        let (N, T, D, H) = (c.xs.shape[0], c.xs.shape[1], inputSize, hiddenSize)
        guard dhs.hasShape(like: c.hs, last: H) else {
            throw .shapeMismatch("lstm output gradient has shape \(dhs.shape), expected \(c.hs.shape)")
        }
        try validateState(finalStateGradient, count: 2, batch: N, hidden: H, "lstm final-state gradient")
        guard truncation >= 0 else { throw .invalidArgument("truncation must be 0 or positive, got \(truncation)") }
        var needed: Int64 = 0
        try check(rnncore_lstm_backward_workspace_size(&needed, Int64(N), Int64(T), Int64(H), Int64(truncation)),
                  "lstm workspace size")
        if workspace.count < Int(needed) { workspace = [Float](repeating: 0, count: Int(needed)) }
        dxs.prepare(like: c.xs)
        var dh0 = initialStateGradients.first ?? Tensor(zeros: [N, H])
        var dc0 = initialStateGradients.last ?? Tensor(zeros: [N, H])
        initialStateGradients = []
        dh0.prepare(N, H)
        dc0.prepare(N, H)
        let dhLast = finalStateGradient.first, dcLast = finalStateGradient.last
        let status = workspace.withUnsafeMutableBufferPointer { ws in
            withExtendedLifetime((dhLast, dcLast)) {
                rnncore_lstm_backward(dxs.writePointer(), dh0.writePointer(), dc0.writePointer(),
                                      wx.gradient.writePointer(), wh.gradient.writePointer(), b.gradient.writePointer(),
                                      ws.baseAddress, dhs.readPointer, dhLast?.readPointer, dcLast?.readPointer,
                                      c.xs.readPointer, c.h0?.readPointer, c.c0?.readPointer, c.hs.readPointer,
                                      c.cs.readPointer, c.gates.readPointer, wx.value.readPointer,
                                      wh.value.readPointer, Int64(N), Int64(T), Int64(D), Int64(H), Int64(truncation))
            }
        }
        initialStateGradients = [dh0, dc0]
        try check(status, "lstm backward")
    }

    public func releaseCache() { cache = nil }
}
