/// A trainable tensor and its gradient, shared by reference between a layer and an optimizer.
public final class Parameter {
    /// A stable name, unique within a model (used as the checkpoint tensor name).
    public let name: String
    /// The current value.
    public var value: Tensor
    /// The accumulated gradient, same shape as `value`; backward passes add into it.
    public var gradient: Tensor

    /// Creates a parameter with a zero gradient.
    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.gradient = Tensor(zeros: value.shape)
    }

    /// The shape of `value` and `gradient`.
    public var shape: [Int] { value.shape }

    /// Sets the gradient to zero (call before each backward pass that starts a new accumulation).
    public func zeroGradient() { gradient.zero() }
}

extension Array where Element == Parameter {
    /// Zeroes every gradient.
    public func zeroGradients() { forEach { $0.zeroGradient() } }

    /// The total number of trainable scalars.
    public var scalarCount: Int { reduce(0) { $0 + $1.value.count } }
}
