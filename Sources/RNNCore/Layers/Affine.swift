import CRNNCore

/// A fully connected layer y = x·W + b over the rows of its input: the TimeAffine layer.
///
/// The weight is usually stored (D, O). A layer made with ``init(transposedWeight:bias:name:)`` reads a (O, D)
/// weight instead, y = x·Wᵀ + b: the layout of an embedding table, so that a language model's output layer can
/// share its embedding's parameter (tied weights; both uses add to the one gradient).
public final class Affine {
    /// The weight: (D, O), or (O, D) when ``weightIsTransposed``.
    public let weight: Parameter
    /// The (O) bias, or nil for none.
    public let bias: Parameter?
    /// Whether ``weight`` is stored (O, D).
    public let weightIsTransposed: Bool
    /// D, the input size.
    public var inputSize: Int { weight.shape[weightIsTransposed ? 1 : 0] }
    /// O, the output size.
    public var outputSize: Int { weight.shape[weightIsTransposed ? 0 : 1] }

    private var cachedInput: Tensor?

    /// Creates a layer from a (D, O) weight and an optional (O) bias.
    public init(weight: Tensor, bias: Tensor?, name: String = "affine") throws(RNNCoreError) {
        guard weight.shape.count == 2 else { throw .shapeMismatch("affine weight must be (D, O), got \(weight.shape)") }
        if let bias { try bias.expectShape([weight.shape[1]], "affine bias") }
        self.weight = Parameter(name: "\(name).weight", value: weight)
        self.bias = bias.map { Parameter(name: "\(name).bias", value: $0) }
        weightIsTransposed = false
    }

    /// Creates a layer y = x·Wᵀ + b that uses `weight`, a (O, D) parameter owned elsewhere (such as an embedding
    /// table), and an optional (O) bias of its own.
    public init(transposedWeight weight: Parameter, bias: Tensor?, name: String = "affine") throws(RNNCoreError) {
        guard weight.shape.count == 2 else { throw .shapeMismatch("affine weight must be (O, D), got \(weight.shape)") }
        if let bias { try bias.expectShape([weight.shape[0]], "affine bias") }
        self.weight = weight
        self.bias = bias.map { Parameter(name: "\(name).bias", value: $0) }
        weightIsTransposed = true
    }

    /// The parameters this layer owns, in a fixed order (a transposed weight belongs to its owner).
    public var parameters: [Parameter] { (weightIsTransposed ? [] : [weight]) + (bias.map { [$0] } ?? []) }

    /// Applies the layer to every row: input (…, D) gives (…, O).
    public func forward(_ x: Tensor) throws(RNNCoreError) -> Tensor {
        var y = Tensor(zeros: [])
        try forward(x, into: &y)
        return y
    }

    /// Applies the layer to every row of `x` (…, D), writing (…, O) into `y`, whose storage is reused when it
    /// already has that shape and is not shared.
    public func forward(_ x: Tensor, into y: inout Tensor) throws(RNNCoreError) {
        guard let last = x.shape.last, last == inputSize, x.count > 0 else {
            throw .shapeMismatch("affine input has shape \(x.shape), expected (…, \(inputSize))")
        }
        y.prepare(like: x, last: outputSize)
        let forward = weightIsTransposed ? rnncore_affine_transposed_forward : rnncore_affine_forward
        try check(forward(y.writePointer(), x.readPointer, weight.value.readPointer, bias?.value.readPointer,
                          Int64(x.count / inputSize), Int64(inputSize), Int64(outputSize)),
                  "affine forward")
        cachedInput = x
    }

    /// Accumulates dW and db and returns dx for the last forward's input.
    public func backward(_ dy: Tensor) throws(RNNCoreError) -> Tensor {
        var dx = Tensor(zeros: [])
        try backward(dy, into: &dx)
        return dx
    }

    /// Accumulates dW and db and writes dx for the last forward's input into `dx` (storage reused when possible).
    public func backward(_ dy: Tensor, into dx: inout Tensor) throws(RNNCoreError) {
        guard let x = cachedInput else { throw .invalidState("affine backward before forward") }
        guard dy.hasShape(like: x, last: outputSize) else {
            throw .shapeMismatch("affine output gradient has shape \(dy.shape), expected \(Array(x.shape.dropLast()) + [outputSize])")
        }
        dx.prepare(like: x)
        let backward = weightIsTransposed ? rnncore_affine_transposed_backward : rnncore_affine_backward
        try check(backward(dx.writePointer(), weight.gradient.writePointer(), bias?.gradient.writePointer(),
                           dy.readPointer, x.readPointer, weight.value.readPointer,
                           Int64(x.count / inputSize), Int64(inputSize), Int64(outputSize)),
                  "affine backward")
    }

    /// Drops the input kept for `backward`, so that the buffer it came from can be reused in place.
    public func releaseCache() { cachedInput = nil }
}

/// PyTorch's name for ``Affine``.
public typealias Linear = Affine
