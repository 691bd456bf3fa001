import CRNNCore

/// The matrix product `op(a)·op(b)` of two 2-D tensors, through the same BLAS GEMM the kernels use.
/// - Parameters:
///   - a: (M, K), or (K, M) with `transposeA`.
///   - b: (K, N), or (N, K) with `transposeB`.
///   - transposeA: use aᵀ.
///   - transposeB: use bᵀ.
/// - Returns: the (M, N) product.
/// - Throws: ``RNNCoreError/shapeMismatch(_:)`` when the inner sizes differ or an operand is not 2-D.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws(RNNCoreError) -> Tensor {
    guard a.shape.count == 2, b.shape.count == 2 else {
        throw .shapeMismatch("matmul needs 2-D tensors, got \(a.shape) and \(b.shape)")
    }
    let (M, K) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (K2, N) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard K == K2 else { throw .shapeMismatch("matmul inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")") }
    var c = Tensor(zeros: [M, N])
    try check(rnncore_sgemm(c.writePointer(), a.readPointer, b.readPointer, Int64(M), Int64(N), Int64(K),
                            transposeA ? 1 : 0, transposeB ? 1 : 0, 1, 0), "matmul")
    return c
}
