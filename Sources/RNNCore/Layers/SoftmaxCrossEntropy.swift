import CRNNCore

/// Softmax followed by the mean cross-entropy against target ids: the TimeSoftmaxWithLoss layer.
///
/// The loss is the mean over counted rows (targets equal to `ignoreIndex` are skipped), accumulated in double.
/// `backward` returns `(softmax - onehot) · dloss / K`, computed by the same fused C pass.
public final class SoftmaxCrossEntropy {
    /// A target equal to this id is skipped (used for padding); nil when every target counts.
    public var ignoreIndex: Int32?

    private var cache: (logits: Tensor, targets: [Int32], ignoreIndex: Int32?)?

    /// Creates the layer.
    public init(ignoreIndex: Int32? = nil) { self.ignoreIndex = ignoreIndex }

    /// Mean loss over the rows of `logits` (…, V) against one target id per row, keeping what `backward` needs.
    /// - Returns: the mean loss and the number of counted rows.
    public func forward(_ logits: Tensor, targets: [Int32]) throws(RNNCoreError) -> (loss: Double, count: Int) {
        let result = try loss(logits, targets: targets)
        cache = (logits, targets, ignoreIndex)
        return result
    }

    /// Mean loss over the rows of `logits` (…, V) against one target id per row, keeping nothing (evaluation).
    /// - Returns: the mean loss and the number of counted rows.
    public func loss(_ logits: Tensor, targets: [Int32]) throws(RNNCoreError) -> (loss: Double, count: Int) {
        let V = try classCount(logits.shape, targets)
        return try fusedPass(logits.readPointer, gradient: nil, classes: V, targets: targets,
                             ignoreIndex: ignoreIndex, dloss: 1, operation: "softmax cross-entropy")
    }

    /// The mean loss and, in the same fused pass, its gradient written over `logits` in place: the training fast
    /// path, which needs no second pass and no copy of the (N·T, V) logits.
    public func lossAndGradient(_ logits: inout Tensor, targets: [Int32],
                                dloss: Float = 1) throws(RNNCoreError) -> (loss: Double, count: Int) {
        let V = try classCount(logits.shape, targets)
        defer { cache = nil }  // the logits are overwritten: a later backward() must not use an older forward
        let p = logits.writePointer()
        return try fusedPass(p, gradient: p, classes: V, targets: targets, ignoreIndex: ignoreIndex,
                             dloss: dloss, operation: "softmax cross-entropy")
    }

    /// The gradient of `dloss · meanLoss` with respect to the last forward's logits.
    public func backward(dloss: Float = 1) throws(RNNCoreError) -> Tensor {
        guard let (logits, targets, ignoreIndex) = cache else { throw .invalidState("softmax cross-entropy backward before forward") }
        var grad = logits  // overwritten in place by the kernel (a copy only if logits are still shared)
        let p = grad.writePointer()
        _ = try fusedPass(p, gradient: p, classes: grad.shape.last!, targets: targets, ignoreIndex: ignoreIndex,
                          dloss: dloss, operation: "softmax cross-entropy backward")
        cache = nil
        return grad
    }

    /// V, after checking that `shape` (…, V) has one row per target.
    private func classCount(_ shape: [Int], _ targets: [Int32]) throws(RNNCoreError) -> Int {
        guard let V = shape.last, V > 0, shape.reduce(1, *) / V == targets.count, !targets.isEmpty else {
            throw .shapeMismatch("softmax cross-entropy: logits \(shape) do not fit \(targets.count) targets")
        }
        return V
    }

    /// The one fused C pass behind every entry point: loss, and the gradient into `gradient` when it is not nil
    /// (it may be `logits` itself). The caller keeps both buffers alive across the call.
    private func fusedPass(_ logits: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>?, classes V: Int,
                           targets: [Int32], ignoreIndex: Int32?, dloss: Float,
                           operation: @autoclosure () -> String) throws(RNNCoreError) -> (loss: Double, count: Int) {
        var loss = 0.0
        var counted: Int64 = 0
        let status = targets.withUnsafeBufferPointer { tp in
            rnncore_softmax_cross_entropy(&loss, &counted, gradient, logits, tp.baseAddress, Int64(tp.count),
                                          Int64(V), ignoreIndex ?? noIgnoreIndex, dloss)
        }
        try check(status, operation())
        return (loss, Int(counted))
    }
}

/// Softmax over the last dimension.
public func softmax(_ logits: Tensor) throws(RNNCoreError) -> Tensor {
    guard let V = logits.shape.last, V > 0, logits.count > 0 else {
        throw .shapeMismatch("softmax of a tensor with shape \(logits.shape)")
    }
    var probs = logits
    let p = probs.writePointer()
    try check(rnncore_softmax_forward(p, p, Int64(logits.count / V), Int64(V)), "softmax")
    return probs
}

/// `RNNCORE_NO_IGNORE_INDEX` (INT32_MIN), which Swift does not import from the header's macro.
let noIgnoreIndex = Int32.min
