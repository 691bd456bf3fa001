/// A dense, row-major float32 array with a shape: the value type that layers exchange.
///
/// Not a general tensor library: it holds exactly what the models need, contiguous aligned storage that the C
/// kernels read and write. Copies are cheap: storage is shared and copied only when a shared tensor is mutated
/// (copy-on-write through `isKnownUniquelyReferenced`).
public struct Tensor: @unchecked Sendable, Equatable, CustomStringConvertible {
    // Sendable: the storage is never mutated while shared — every mutation goes through `makeUnique()`.

    /// The size of every dimension, outermost first.
    public private(set) var shape: [Int]
    private var storage: TensorStorage

    /// Creates a tensor of zeros.
    /// - Parameter shape: the size of every dimension; each must be non-negative.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
    }

    /// Creates a tensor from row-major elements.
    /// - Throws: ``RNNCoreError/shapeMismatch(_:)`` when the element count is not the product of `shape`.
    public init(shape: [Int], scalars: [Float]) throws(RNNCoreError) {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == scalars.count else {
            throw .shapeMismatch("\(scalars.count) elements cannot have shape \(shape)")
        }
        self.shape = shape
        self.storage = TensorStorage(count: scalars.count)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// The number of elements.
    public var count: Int { storage.count }

    /// The elements in row-major order (a copy).
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// The element at a flat row-major index.
    public subscript(flat index: Int) -> Float {
        get {
            precondition(index >= 0 && index < count, "Tensor: index \(index) out of range 0..<\(count)")
            return storage.pointer[index]
        }
        set {
            precondition(index >= 0 && index < count, "Tensor: index \(index) out of range 0..<\(count)")
            makeUnique()
            storage.pointer[index] = newValue
        }
    }

    /// Reinterprets the elements with another shape of the same element count (no copy).
    public func reshaped(_ newShape: [Int]) throws(RNNCoreError) -> Tensor {
        guard newShape.allSatisfy({ $0 >= 0 }), newShape.reduce(1, *) == count else {
            throw .shapeMismatch("\(count) elements cannot have shape \(newShape)")
        }
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// Sets every element to zero, keeping the shape.
    public mutating func zero() {
        makeUnique()
        storage.pointer.update(repeating: 0, count: storage.count)
    }

    /// Calls `body` with a pointer to the contiguous elements.
    public func withUnsafeBufferPointer<R, E: Error>(
        _ body: (UnsafeBufferPointer<Float>) throws(E) -> R
    ) throws(E) -> R {
        try withExtendedLifetime(storage) { () throws(E) -> R in
            try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
        }
    }

    /// Calls `body` with a mutable pointer to the contiguous elements.
    public mutating func withUnsafeMutableBufferPointer<R, E: Error>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws(E) -> R
    ) throws(E) -> R {
        makeUnique()
        return try withExtendedLifetime(storage) { () throws(E) -> R in
            try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
        }
    }

    /// Two tensors are equal when their shapes and every element are equal (bitwise float `==`).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape else { return false }
        if lhs.storage === rhs.storage { return true }
        for i in 0..<lhs.count where lhs.storage.pointer[i] != rhs.storage.pointer[i] { return false }
        return true
    }

    /// A short summary: shape and the first elements.
    public var description: String {
        let head = (0..<min(count, 6)).map { String(storage.pointer[$0]) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 6 ? ", …" : "")])"
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }
}

// MARK: - Kernel access

extension Tensor {
    /// The storage object, for tests that check buffers are reused rather than reallocated.
    var storageObject: AnyObject { storage }

    /// The storage address for a kernel that reads. Valid while this tensor value is alive and unmodified: callers
    /// keep it alive across the C call with `withExtendedLifetime`.
    var readPointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    /// The storage address for a kernel that writes, after making the storage unique.
    mutating func writePointer() -> UnsafeMutablePointer<Float> {
        makeUnique()
        return storage.pointer
    }

    /// Makes this tensor an (d0, d1) buffer: kept as it is (storage and contents) when it already has that shape,
    /// replaced by zeros otherwise. Layers use it to reuse output buffers across steps without allocating.
    mutating func prepare(_ d0: Int, _ d1: Int) {
        if !(shape.count == 2 && shape[0] == d0 && shape[1] == d1) { self = Tensor(zeros: [d0, d1]) }
    }

    /// Makes this tensor an (d0, d1, d2) buffer, as ``prepare(_:_:)`` does.
    mutating func prepare(_ d0: Int, _ d1: Int, _ d2: Int) {
        if !(shape.count == 3 && shape[0] == d0 && shape[1] == d1 && shape[2] == d2) { self = Tensor(zeros: [d0, d1, d2]) }
    }

    /// Makes this tensor a buffer of `other`'s shape with the last dimension replaced by `last` (or kept when nil),
    /// as ``prepare(_:_:)`` does.
    mutating func prepare(like other: Tensor, last: Int? = nil) {
        let last = last ?? (other.shape.last ?? 0)
        var same = shape.count == other.shape.count && shape.last == last
        if same {
            for i in 0..<max(shape.count - 1, 0) where shape[i] != other.shape[i] { same = false; break }
        }
        if !same { self = Tensor(zeros: Array(other.shape.dropLast()) + [last]) }
    }

    /// Whether the shape is (d0, d1), without building an array.
    func hasShape(_ d0: Int, _ d1: Int) -> Bool { shape.count == 2 && shape[0] == d0 && shape[1] == d1 }

    /// Whether this tensor has `other`'s shape with the last dimension replaced by `last`, without building an array.
    func hasShape(like other: Tensor, last: Int) -> Bool {
        guard shape.count == other.shape.count, shape.last == last else { return false }
        for i in 0..<max(shape.count - 1, 0) where shape[i] != other.shape[i] { return false }
        return true
    }

    /// Requires `shape` to equal `expected`; `name` appears in the error message.
    func expectShape(_ expected: [Int], _ name: String) throws(RNNCoreError) {
        guard shape == expected else {
            throw .shapeMismatch("\(name) has shape \(shape), expected \(expected)")
        }
    }
}

/// Reference-counted, 64-byte aligned, zero-initialised float storage.
final class TensorStorage {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    func copy() -> TensorStorage {
        let other = TensorStorage(count: count)
        other.pointer.update(from: pointer, count: count)
        return other
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

extension Tensor {
    /// The transpose of an (R, C) matrix: (C, R).
    func matrixTranspose() -> Tensor {
        precondition(shape.count == 2, "matrixTranspose needs a matrix, got shape \(shape)")
        let (R, C) = (shape[0], shape[1])
        var out = Tensor(zeros: [C, R])
        let target = out.writePointer()
        withExtendedLifetime(self) {
            let source = readPointer
            for r in 0..<R {
                for c in 0..<C { target[c * R + r] = source[r * C + c] }
            }
        }
        return out
    }
}
