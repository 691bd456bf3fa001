import CRNNCore

/// A fully connected layer y = x·W + b over the rows of its input: the TimeAffine layer.
public final class Affine {
    /// The (D, O) weight.
    public let weight: Parameter
    /// The (O) bias, or nil for none.
    public let bias: Parameter?
    /// D, the input size.
    public var inputSize: Int { weight.shape[0] }
    /// O, the output size.
    public var outputSize: Int { weight.shape[1] }

    private var cachedInput: Tensor?

    /// Creates a layer from a (D, O) weight and an optional (O) bias.
    public init(weight: Tensor, bias: Tensor?, name: String = "affine") throws(RNNCoreError) {
        guard weight.shape.count == 2 else { throw .shapeMismatch("affine weight must be (D, O), got \(weight.shape)") }
        if let bias { try bias.expectShape([weight.shape[1]], "affine bias") }
        self.weight = Parameter(name: "\(name).weight", value: weight)
        self.bias = bias.map { Parameter(name: "\(name).bias", value: $0) }
    }

    /// The parameters, in a fixed order.
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

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
        try check(rnncore_affine_forward(y.writePointer(), x.readPointer, weight.value.readPointer,
                                         bias?.value.readPointer,
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
        try check(rnncore_affine_backward(dx.writePointer(), weight.gradient.writePointer(),
                                          bias?.gradient.writePointer(), dy.readPointer, x.readPointer,
                                          weight.value.readPointer,
                                          Int64(x.count / inputSize), Int64(inputSize), Int64(outputSize)),
                  "affine backward")
    }

    /// Drops the input kept for `backward`, so that the buffer it came from can be reused in place.
    public func releaseCache() { cachedInput = nil }
}

/// PyTorch's name for ``Affine``.
public typealias Linear = Affine
