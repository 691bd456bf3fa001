import CRNNCore

/// A status code returned by the C kernels, with its description.
public struct KernelStatus: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The C `rnncore_status` value (negative for errors).
    public let rawValue: Int32
    /// Wraps a raw C status value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// A required pointer was NULL.
    public static let nullPointer = KernelStatus(rawValue: RNNCORE_ERR_NULL_POINTER.rawValue)
    /// A size was zero or negative.
    public static let invalidSize = KernelStatus(rawValue: RNNCORE_ERR_INVALID_SIZE.rawValue)
    /// A product of sizes overflows.
    public static let sizeOverflow = KernelStatus(rawValue: RNNCORE_ERR_SIZE_OVERFLOW.rawValue)
    /// A scalar argument is out of its domain.
    public static let invalidArgument = KernelStatus(rawValue: RNNCORE_ERR_INVALID_ARGUMENT.rawValue)
    /// A token id or target lies outside the vocabulary.
    public static let indexOutOfRange = KernelStatus(rawValue: RNNCORE_ERR_INDEX_OUT_OF_RANGE.rawValue)
    /// A loss or gradient norm is NaN or infinite.
    public static let nonFinite = KernelStatus(rawValue: RNNCORE_ERR_NON_FINITE.rawValue)
    /// An output overlaps an input.
    public static let aliasing = KernelStatus(rawValue: RNNCORE_ERR_ALIASING.rawValue)

    /// The C library's description of the status.
    public var description: String {
        String(cString: rnncore_status_string(rnncore_status(rawValue: rawValue)))
    }
}

/// The errors thrown by RNNCore's numeric layers, models and optimizers.
public enum RNNCoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A C kernel refused its arguments or reported a non-finite result.
    case kernel(KernelStatus, operation: String)
    /// Tensors or token arrays whose shapes do not fit together.
    case shapeMismatch(String)
    /// An argument outside its valid range (a size, a rate, a token id, ...).
    case invalidArgument(String)
    /// A call made in the wrong order (for example `backward` before `forward`).
    case invalidState(String)
    /// `what` needs about `required` bytes, more than the `available` bytes this process can still allocate
    /// (``SystemMemory/available()``): refused before allocating anything.
    case insufficientMemory(required: Int, available: Int, what: String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .kernel(status, operation): "\(operation) failed: \(status)"
        case let .shapeMismatch(message): "shape mismatch: \(message)"
        case let .invalidArgument(message): "invalid argument: \(message)"
        case let .invalidState(message): "invalid state: \(message)"
        case let .insufficientMemory(required, available, what):
            "not enough memory for \(what): it needs about \(MemoryEstimate.format(required)), only \(MemoryEstimate.format(available)) available (the least of free memory, the address-space and data limits, and the cgroup limit)"
        }
    }
}

/// Throws ``RNNCoreError/kernel(_:operation:)`` unless `status` is `RNNCORE_OK`.
@inline(__always)
func check(_ status: rnncore_status, _ operation: @autoclosure () -> String) throws(RNNCoreError) {
    guard status == RNNCORE_OK else {
        throw .kernel(KernelStatus(rawValue: status.rawValue), operation: operation())
    }
}
