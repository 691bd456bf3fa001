import CRNNCore

/// A tanh recurrent layer over a window of T steps: the TimeRNN layer.
///
/// `h_t = tanh(x_t·Wx + h_{t-1}·Wh + b)`. With `isStateful` (the default) the last hidden state of one `forward`
/// becomes the initial state of the next, so a long text can be processed window by window (truncated BPTT);
/// `backward` stops at the window's start. ``resetState()`` starts again from zeros.
public final class RNN: RecurrentLayer {
    /// The (D, H) input-to-hidden weight.
    public let wx: Parameter
    /// The (H, H) hidden-to-hidden weight.
    public let wh: Parameter
    /// The (H) bias.
    public let b: Parameter
    /// D, the input size.
    public var inputSize: Int { wx.shape[0] }
    /// H, the hidden size.
    public var hiddenSize: Int { wx.shape[1] }
    /// Whether the hidden state is carried from one `forward` to the next.
    public var isStateful: Bool
    /// Backpropagate each output's error through at most this many steps inside a window (0: the whole window).
    public var truncation: Int = 0
    /// The hidden state (N, H) after the last `forward`, or nil after ``resetState()``.
    public private(set) var hiddenState: Tensor?
    /// ∂L/∂h0 from the last `backward`: the gradient that truncation cut off at the window's start.
    public private(set) var initialStateGradient: Tensor?

    private var cache: (xs: Tensor, h0: Tensor?, hs: Tensor)?
    private var workspace: [Float] = []
    private var spareState: Tensor?

    /// Creates a layer from its weights: wx (D, H), wh (H, H), b (H).
    public init(wx: Tensor, wh: Tensor, b: Tensor, stateful: Bool = true, name: String = "rnn") throws(RNNCoreError) {
        guard wx.shape.count == 2 else { throw .shapeMismatch("rnn wx must be (D, H), got \(wx.shape)") }
        let H = wx.shape[1]
        try wh.expectShape([H, H], "rnn wh")
        try b.expectShape([H], "rnn b")
        self.wx = Parameter(name: "\(name).wx", value: wx)
        self.wh = Parameter(name: "\(name).wh", value: wh)
        self.b = Parameter(name: "\(name).b", value: b)
        self.isStateful = stateful
    }

    /// The parameters, in a fixed order.
    public var parameters: [Parameter] { [wx, wh, b] }

    /// Forgets the hidden state: the next `forward` starts from zeros.
    public func resetState() {
        spareState = spareState ?? hiddenState
        hiddenState = nil
    }

    /// Sets the hidden state (N, H) that the next `forward` starts from.
    public func setState(_ h: Tensor) throws(RNNCoreError) {
        guard h.shape.count == 2, h.shape[1] == hiddenSize else {
            throw .shapeMismatch("rnn state has shape \(h.shape), expected (N, \(hiddenSize))")
        }
        hiddenState = h
    }

    /// `[hiddenState]`, or empty after ``resetState()``.
    public var carriedState: [Tensor] { hiddenState.map { [$0] } ?? [] }

    /// Sets the hidden state from `[h]`; an empty array resets it.
    public func setCarriedState(_ state: [Tensor]) throws(RNNCoreError) {
        try validateState(state, count: 1, batch: nil, hidden: hiddenSize, "rnn state")
        if let h = state.first { hiddenState = h } else { resetState() }
    }

    /// `[∂L/∂h0]` from the last `backward`.
    public var initialStateGradients: [Tensor] { initialStateGradient.map { [$0] } ?? [] }

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
            throw .shapeMismatch("rnn input has shape \(xs.shape), expected (N, T, \(inputSize))")
        }
        let (N, T, D, H) = (xs.shape[0], xs.shape[1], inputSize, hiddenSize)
        var h0 = isStateful ? hiddenState : nil
        if let h = h0, !h.hasShape(N, H) {
            guard h.shape.count == 2, h.shape[1] == H else {
                throw .shapeMismatch("rnn state has shape \(h.shape), expected [\(N), \(H)]")
            }
            h0 = nil  // the batch size changed: a new set of streams starts from zeros
        }
        hs.prepare(N, T, H)
        // The new state goes into the spare buffer; the old one stays intact as h0 for backward.
        var hLast = spareState ?? Tensor(zeros: [N, H])
        spareState = nil
        hLast.prepare(N, H)
        let status = withExtendedLifetime(h0) {
            rnncore_rnn_forward(hs.writePointer(), hLast.writePointer(), xs.readPointer, h0?.readPointer,
                                wx.value.readPointer, wh.value.readPointer, b.value.readPointer,
                                Int64(N), Int64(T), Int64(D), Int64(H))
        }
        if status != RNNCORE_OK { spareState = hLast }
        try check(status, "rnn forward")
        cache = (xs, h0, hs)
        spareState = hiddenState
        hiddenState = hLast
    }

    /// Backpropagates through the last window: dhs (N, T, H) gives dxs (N, T, D); dWx, dWh, db are accumulated.
    /// - Parameter dhLast: an extra gradient flowing into the last hidden state from later, or nil.
    public func backward(_ dhs: Tensor, dhLast: Tensor? = nil) throws(RNNCoreError) -> Tensor {
        var dxs = Tensor(zeros: [])
        try backward(dhs, dhLast: dhLast, into: &dxs)
        return dxs
    }

    /// Backpropagates through the last window, writing dxs (N, T, D) into `dxs` (storage reused when possible);
    /// dWx, dWh, db are accumulated and ∂L/∂h0 goes to ``initialStateGradient``.
    public func backward(_ dhs: Tensor, dhLast: Tensor? = nil, into dxs: inout Tensor) throws(RNNCoreError) {
        try backward(dhs, finalStateGradient: dhLast.map { [$0] } ?? [], into: &dxs)
    }

    /// Backpropagates through the last window; `finalStateGradient` is `[∂L/∂h_last]` or empty.
    public func backward(_ dhs: Tensor, finalStateGradient: [Tensor], into dxs: inout Tensor) throws(RNNCoreError) {
        try validateState(finalStateGradient, count: 1, batch: nil, hidden: hiddenSize, "rnn last-state gradient")
        guard truncation >= 0 else { throw .invalidArgument("truncation must be 0 or positive, got \(truncation)") }
        let dhLast = finalStateGradient.first
        guard let (xs, h0, hs) = cache else { throw .invalidState("rnn backward before forward") }
        let (N, T, D, H) = (xs.shape[0], xs.shape[1], inputSize, hiddenSize)
        guard dhs.hasShape(like: hs, last: H) else {
            throw .shapeMismatch("rnn output gradient has shape \(dhs.shape), expected \(hs.shape)")
        }
        if let dhLast, !dhLast.hasShape(N, H) {
            throw .shapeMismatch("rnn last-state gradient has shape \(dhLast.shape), expected [\(N), \(H)]")
        }
        var needed: Int64 = 0
        try check(rnncore_rnn_backward_truncated_workspace_size(&needed, Int64(N), Int64(T), Int64(H), Int64(truncation)),
                  "rnn workspace size")
        if workspace.count < Int(needed) { workspace = [Float](repeating: 0, count: Int(needed)) }
        dxs.prepare(like: xs)
        var dh0 = initialStateGradient ?? Tensor(zeros: [N, H])
        initialStateGradient = nil
        dh0.prepare(N, H)
        let status = workspace.withUnsafeMutableBufferPointer { ws in
            rnncore_rnn_backward_truncated(dxs.writePointer(), dh0.writePointer(), wx.gradient.writePointer(),
                                 wh.gradient.writePointer(), b.gradient.writePointer(), ws.baseAddress,
                                 dhs.readPointer, dhLast?.readPointer, xs.readPointer, h0?.readPointer,
                                 hs.readPointer, wx.value.readPointer, wh.value.readPointer,
                                 Int64(N), Int64(T), Int64(D), Int64(H), Int64(truncation))
        }
        initialStateGradient = dh0
        try check(status, "rnn backward")
    }

    /// Drops what forward kept for `backward`, so that the buffers it came from can be reused in place.
    public func releaseCache() { cache = nil }
}
