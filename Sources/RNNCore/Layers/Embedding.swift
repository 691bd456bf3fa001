import CRNNCore

/// Token-id lookup into a (V, D) table: the TimeEmbedding layer.
public final class Embedding {
    /// The (V, D) table.
    public let weight: Parameter
    /// V, the number of rows.
    public var vocabularySize: Int { weight.shape[0] }
    /// D, the vector size.
    public var embeddingSize: Int { weight.shape[1] }

    private var cachedIDs: [Int32] = []

    /// Creates a layer with the given (V, D) table.
    public init(weight: Tensor, name: String = "embedding") throws(RNNCoreError) {
        guard weight.shape.count == 2 else { throw .shapeMismatch("embedding weight must be (V, D), got \(weight.shape)") }
        self.weight = Parameter(name: "\(name).weight", value: weight)
    }

    /// The parameters, in a fixed order.
    public var parameters: [Parameter] { [weight] }

    /// Looks up every id: M ids give an (M, D) tensor (reshape to (N, T, D) as needed).
    /// - Throws: ``RNNCoreError/kernel(_:operation:)`` with `indexOutOfRange` for an id outside [0, V).
    public func forward(_ ids: [Int32]) throws(RNNCoreError) -> Tensor {
        var out = Tensor(zeros: [])
        try forward(ids, batchSize: 1, into: &out)
        return try out.reshaped([ids.count, embeddingSize])
    }

    /// Looks up N streams of T ids (`ids[n*T + t]`), writing (N, T, D) into `out` (storage reused when possible).
    public func forward(_ ids: [Int32], batchSize N: Int, into out: inout Tensor) throws(RNNCoreError) {
        guard !ids.isEmpty else { throw .invalidArgument("embedding: no ids") }
        guard N > 0, ids.count % N == 0 else {
            throw .invalidArgument("embedding: \(ids.count) ids do not form \(N) equal streams")
        }
        out.prepare(N, ids.count / N, embeddingSize)
        let status = ids.withUnsafeBufferPointer { idp in
            rnncore_embedding_forward(out.writePointer(), idp.baseAddress, weight.value.readPointer,
                                      Int64(ids.count), Int64(vocabularySize), Int64(embeddingSize))
        }
        try check(status, "embedding forward")
        cachedIDs = ids
    }

    /// Adds the gradient of the last forward's output into `weight.gradient` (scatter-add, deterministic).
    /// - Parameter dout: (M, D), or any shape with M·D elements.
    public func backward(_ dout: Tensor) throws(RNNCoreError) {
        guard !cachedIDs.isEmpty else { throw .invalidState("embedding backward before forward") }
        guard dout.count == cachedIDs.count * embeddingSize else {
            throw .shapeMismatch("embedding backward: gradient has \(dout.count) elements, expected \(cachedIDs.count)×\(embeddingSize)")
        }
        let status = cachedIDs.withUnsafeBufferPointer { idp in
            rnncore_embedding_backward(weight.gradient.writePointer(), dout.readPointer, idp.baseAddress,
                                       Int64(idp.count), Int64(vocabularySize), Int64(embeddingSize))
        }
        try check(status, "embedding backward")
    }

    /// Drops the ids kept for `backward`, so that the caller's id array can be refilled in place.
    public func releaseCache() { cachedIDs = [] }
}
