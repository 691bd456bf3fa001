/// A recurrent layer over windows of T steps: what stacked, bidirectional and language models build on.
///
/// ``RNN`` and ``LSTM`` conform. A layer maps xs (N, T, D) to hs (N, T, H). With ``isStateful`` the state it ends
/// a window in, ``carriedState``, is where the next window starts; `backward` stops at the window's start, or
/// earlier with ``truncation``.
public protocol RecurrentLayer: AnyObject {
    /// D, the input size.
    var inputSize: Int { get }
    /// H, the hidden size.
    var hiddenSize: Int { get }
    /// The parameters, in a fixed order.
    var parameters: [Parameter] { get }
    /// Whether the state is carried from one `forward` to the next.
    var isStateful: Bool { get set }
    /// Backpropagate each output's error through at most this many steps inside a window; 0 (the default) is the
    /// whole window. A value of T or more is the same as 0.
    var truncation: Int { get set }
    /// The state after the last `forward` (`[h]` for an RNN, `[h, c]` for an LSTM, each (N, H)); empty after
    /// ``resetState()``.
    var carriedState: [Tensor] { get }
    /// Sets the state the next `forward` starts from: as many (N, H) tensors as ``carriedState`` holds.
    func setCarriedState(_ state: [Tensor]) throws(RNNCoreError)
    /// Forgets the state: the next `forward` starts from zeros.
    func resetState()
    /// Runs the window over xs (N, T, D), writing every hidden state (N, T, H) into `hs` (storage reused when it
    /// already has that shape and is not shared).
    func forward(_ xs: Tensor, into hs: inout Tensor) throws(RNNCoreError)
    /// Backpropagates through the last window: dhs (N, T, H) gives dxs (N, T, D), parameter gradients are
    /// accumulated. `finalStateGradient` is an extra gradient flowing into the final state (as in
    /// ``carriedState``) from later, or empty.
    func backward(_ dhs: Tensor, finalStateGradient: [Tensor], into dxs: inout Tensor) throws(RNNCoreError)
    /// ∂L/∂(initial state) from the last `backward`, shaped as ``carriedState``.
    var initialStateGradients: [Tensor] { get }
    /// Drops what forward kept for `backward`, so that the buffers it came from can be reused in place.
    func releaseCache()
}

extension RecurrentLayer {
    /// Backpropagates through the last window with no gradient from later windows.
    public func backward(_ dhs: Tensor, into dxs: inout Tensor) throws(RNNCoreError) {
        try backward(dhs, finalStateGradient: [], into: &dxs)
    }
}

/// Checks a state or state gradient given to a recurrent layer: `count` tensors (or none), each (N, H).
func validateState(_ state: [Tensor], count: Int, batch N: Int?, hidden H: Int,
                   _ what: String) throws(RNNCoreError) {
    guard state.isEmpty || state.count == count else {
        throw .shapeMismatch("\(what) has \(state.count) tensors, expected \(count)")
    }
    for t in state {
        guard t.shape.count == 2, t.shape[1] == H, N.map({ t.shape[0] == $0 }) ?? true else {
            throw .shapeMismatch("\(what) has shape \(t.shape), expected [\(N.map(String.init) ?? "N"), \(H)]")
        }
    }
}
