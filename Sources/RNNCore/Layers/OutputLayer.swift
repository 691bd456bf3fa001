/// What a language model puts after its recurrent stack: a distribution over the V words for every row of the top
/// hidden states, and the mean cross-entropy against target ids.
///
/// Two layers conform: ``SoftmaxOutput`` (an affine layer and the full softmax, optionally tied to the embedding)
/// and ``AdaptiveSoftmax``. Both give exact, normalised probabilities; they differ in how much work a row costs.
public protocol OutputLayer: AnyObject {
    /// V, the number of words.
    var vocabularySize: Int { get }
    /// H, the size of an input row.
    var inputSize: Int { get }
    /// The parameters this layer owns, in a fixed order (a weight shared with the embedding is not among them).
    var parameters: [Parameter] { get }

    /// The mean cross-entropy of predicting `targets` from the rows of `x` (…, H), one target per row; targets
    /// equal to `ignoreIndex` do not count. Keeps nothing for a backward pass.
    /// - Returns: the mean loss and the number of counted rows.
    func loss(_ x: Tensor, targets: [Int32], ignoreIndex: Int32?) throws(RNNCoreError) -> (loss: Double, count: Int)

    /// The mean loss as ``loss(_:targets:ignoreIndex:)``, with its gradient: ∂loss/∂x written into
    /// `inputGradient` (storage reused when the shape repeats) and every parameter gradient accumulated. With
    /// `countCorrect`, `correct` is how many counted rows give their target the highest probability (ties go to
    /// the smaller id).
    func lossAndGradient(_ x: Tensor, targets: [Int32], ignoreIndex: Int32?, countCorrect: Bool,
                         inputGradient: inout Tensor) throws(RNNCoreError) -> (loss: Double, count: Int, correct: Int)

    /// Scores (…, V) for the rows of `x` (…, H) whose softmax is the model's distribution: logits for the full
    /// softmax, log-probabilities for the adaptive one. Written into `scores` (storage reused when possible).
    func scores(_ x: Tensor, into scores: inout Tensor) throws(RNNCoreError)

    /// Drops any reference to the caller's buffers.
    func releaseCache()

    /// The parameters in PyTorch's layout, each name prefixed with `prefix`: `weight` (V, H) and `bias` of an
    /// `nn.Linear`, or the tensors of an `nn.AdaptiveLogSoftmaxWithLoss`.
    func pyTorchStateDict(prefix: String) -> [String: Tensor]
}

extension OutputLayer {
    /// Checks that `x` is (…, H) with one row per target.
    func checkRows(_ x: Tensor, targets: [Int32]) throws(RNNCoreError) -> Int {
        guard x.shape.last == inputSize, x.count > 0, x.count / inputSize == targets.count else {
            throw .shapeMismatch("output layer input \(x.shape) does not fit \(targets.count) targets of (…, \(inputSize))")
        }
        return targets.count
    }

    /// How many rows of `scores` (M, V) have their largest entry at the target (ignored targets do not count;
    /// ties go to the smaller id).
    static func countCorrect(_ scores: Tensor, targets: [Int32], ignoreIndex: Int32?) -> Int {
        let V = scores.shape.last ?? 1
        return scores.withUnsafeBufferPointer { z in
            var correct = 0
            for (m, target) in targets.enumerated() where target != ignoreIndex {
                let row = z[(m * V)..<((m + 1) * V)]
                var best = row.startIndex
                for i in row.indices where row[i] > row[best] { best = i }
                if best - m * V == Int(target) { correct += 1 }
            }
            return correct
        }
    }
}

/// The full softmax output layer: logits = x·W + b over all V words (the TimeAffine layer), then the fused
/// softmax cross-entropy (TimeSoftmaxWithLoss). With tied weights, W is the embedding table read transposed.
public final class SoftmaxOutput: OutputLayer {
    /// The affine layer H → V.
    public let affine: Affine
    /// The loss layer.
    public let criterion = SoftmaxCrossEntropy()
    private var logits = Tensor(zeros: [0])

    /// Creates the layer over an affine layer with input size H and output size V.
    public init(affine: Affine) { self.affine = affine }

    public var vocabularySize: Int { affine.outputSize }
    public var inputSize: Int { affine.inputSize }
    public var parameters: [Parameter] { affine.parameters }

    public func loss(_ x: Tensor, targets: [Int32], ignoreIndex: Int32?) throws(RNNCoreError) -> (loss: Double, count: Int) {
        _ = try checkRows(x, targets: targets)
        try affine.forward(x, into: &logits)
        affine.releaseCache()
        criterion.ignoreIndex = ignoreIndex
        return try criterion.loss(logits, targets: targets)
    }

    public func lossAndGradient(_ x: Tensor, targets: [Int32], ignoreIndex: Int32?, countCorrect: Bool,
                                inputGradient: inout Tensor) throws(RNNCoreError) -> (loss: Double, count: Int, correct: Int) {
        _ = try checkRows(x, targets: targets)
        try affine.forward(x, into: &logits)
        defer { affine.releaseCache() }
        let correct = countCorrect ? Self.countCorrect(logits, targets: targets, ignoreIndex: ignoreIndex) : 0
        criterion.ignoreIndex = ignoreIndex
        let result = try criterion.lossAndGradient(&logits, targets: targets)
        try affine.backward(logits, into: &inputGradient)
        return (result.loss, result.count, correct)
    }

    public func scores(_ x: Tensor, into scores: inout Tensor) throws(RNNCoreError) {
        try affine.forward(x, into: &scores)
        affine.releaseCache()
    }

    public func releaseCache() { affine.releaseCache() }

    public func pyTorchStateDict(prefix: String) -> [String: Tensor] {
        var dict = [prefix + "weight": affine.weightIsTransposed ? affine.weight.value : affine.weight.value.matrixTranspose()]
        if let bias = affine.bias { dict[prefix + "bias"] = bias.value }
        return dict
    }

    /// The (N·T, V) logits buffer, for tests that check reuse.
    var buffers: [Tensor] { [logits] }
}
