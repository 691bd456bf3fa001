// Plain double-precision reference implementations of RNNCore's numeric layers, and the comparison helpers that
// the Numerics tests share.
//
// Every reference is a straight loop over the row-major layout documented in include/rnncore.h, written for
// clarity, not speed. The float32 values under test are widened to Double exactly, so a difference between the
// library and the reference is the library's own rounding (or a bug), never an artefact of the inputs.
//
// Everything lives in `NumericsReference`, `NumericsTolerance` and `NumericsCheck` so that nothing collides with
// helpers in other test folders of the same test module.

import Foundation
import RNNCore
import Testing

// MARK: - Reference implementations

/// Double-precision reference implementations (straight loops).
enum NumericsReference {
    /// out[m] = W[ids[m]]: (M, D) from a (V, D) table.
    static func embedding(ids: [Int32], table: [Double], V: Int, D: Int) -> [Double] {
        var out = [Double](repeating: 0, count: ids.count * D)
        for (m, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < V)
            for d in 0..<D { out[m * D + d] = table[Int(id) * D + d] }
        }
        return out
    }

    /// dW[ids[m]] += dout[m]: the (V, D) gradient of the table.
    static func embeddingBackward(dout: [Double], ids: [Int32], V: Int, D: Int) -> [Double] {
        var dw = [Double](repeating: 0, count: V * D)
        for (m, id) in ids.enumerated() {
            for d in 0..<D { dw[Int(id) * D + d] += dout[m * D + d] }
        }
        return dw
    }

    /// y = x·W + b: x (M, D), W (D, O), b (O) or nil.
    static func affine(x: [Double], w: [Double], b: [Double]?, M: Int, D: Int, O: Int) -> [Double] {
        var y = [Double](repeating: 0, count: M * O)
        for m in 0..<M {
            for o in 0..<O {
                var s = b?[o] ?? 0
                for d in 0..<D { s += x[m * D + d] * w[d * O + o] }
                y[m * O + o] = s
            }
        }
        return y
    }

    /// dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ_m dy.
    static func affineBackward(dy: [Double], x: [Double], w: [Double], M: Int, D: Int, O: Int)
        -> (dx: [Double], dw: [Double], db: [Double]) {
        var dx = [Double](repeating: 0, count: M * D)
        var dw = [Double](repeating: 0, count: D * O)
        var db = [Double](repeating: 0, count: O)
        for m in 0..<M {
            for o in 0..<O {
                let g = dy[m * O + o]
                db[o] += g
                for d in 0..<D {
                    dx[m * D + d] += g * w[d * O + o]
                    dw[d * O + o] += x[m * D + d] * g
                }
            }
        }
        return (dx, dw, db)
    }

    /// hs[n][t] = tanh(xs[n][t]·Wx + hs[n][t-1]·Wh + b) with hs[n][-1] = h0[n] (zeros when h0 is nil).
    /// Returns hs (N, T, H); the last state of stream n is hs[(n*T + T-1)*H ..< +H].
    static func rnnForward(xs: [Double], h0: [Double]?, wx: [Double], wh: [Double], b: [Double],
                           N: Int, T: Int, D: Int, H: Int) -> [Double] {
        var hs = [Double](repeating: 0, count: N * T * H)
        for n in 0..<N {
            var prev = h0.map { Array($0[(n * H)..<((n + 1) * H)]) } ?? [Double](repeating: 0, count: H)
            for t in 0..<T {
                var next = [Double](repeating: 0, count: H)
                for j in 0..<H {
                    var s = b[j]
                    for d in 0..<D { s += xs[(n * T + t) * D + d] * wx[d * H + j] }
                    for i in 0..<H { s += prev[i] * wh[i * H + j] }
                    next[j] = tanh(s)
                }
                for j in 0..<H { hs[(n * T + t) * H + j] = next[j] }
                prev = next
            }
        }
        return hs
    }

    /// The last hidden state (N, H) of a window computed by ``rnnForward``.
    static func lastState(hs: [Double], N: Int, T: Int, H: Int) -> [Double] {
        var last: [Double] = []
        for n in 0..<N {
            let start = (n * T + T - 1) * H
            last += hs[start..<(start + H)]
        }
        return last
    }

    /// Backpropagation through time over one window, cut at the window's start except through dh0.
    static func rnnBackward(dhs: [Double], dhLast: [Double]?, xs: [Double], h0: [Double]?, hs: [Double],
                            wx: [Double], wh: [Double], N: Int, T: Int, D: Int, H: Int)
        -> (dxs: [Double], dh0: [Double], dwx: [Double], dwh: [Double], db: [Double]) {
        var dxs = [Double](repeating: 0, count: N * T * D)
        var dh0 = [Double](repeating: 0, count: N * H)
        var dwx = [Double](repeating: 0, count: D * H)
        var dwh = [Double](repeating: 0, count: H * H)
        var db = [Double](repeating: 0, count: H)
        for n in 0..<N {
            var carry = dhLast.map { Array($0[(n * H)..<((n + 1) * H)]) } ?? [Double](repeating: 0, count: H)
            for t in stride(from: T - 1, through: 0, by: -1) {
                let row = (n * T + t) * H
                let prev: [Double] = t > 0 ? Array(hs[(row - H)..<row])
                    : (h0.map { Array($0[(n * H)..<((n + 1) * H)]) } ?? [Double](repeating: 0, count: H))
                var dt = [Double](repeating: 0, count: H)
                for j in 0..<H {
                    let h = hs[row + j]
                    dt[j] = (dhs[row + j] + carry[j]) * (1 - h * h)
                    db[j] += dt[j]
                    for d in 0..<D {
                        dwx[d * H + j] += xs[(n * T + t) * D + d] * dt[j]
                        dxs[(n * T + t) * D + d] += dt[j] * wx[d * H + j]
                    }
                    for i in 0..<H { dwh[i * H + j] += prev[i] * dt[j] }
                }
                var dprev = [Double](repeating: 0, count: H)
                for i in 0..<H {
                    for j in 0..<H { dprev[i] += dt[j] * wh[i * H + j] }
                }
                carry = dprev
            }
            for i in 0..<H { dh0[n * H + i] = carry[i] }
        }
        return (dxs, dh0, dwx, dwh, db)
    }

    /// Mean softmax cross-entropy over the rows whose target is not `ignoreIndex`, and its gradient
    /// `(softmax - onehot) · dloss / K` (zero rows for skipped targets).
    static func softmaxCrossEntropy(logits: [Double], targets: [Int32], V: Int, ignoreIndex: Int32?,
                                    dloss: Double = 1) -> (loss: Double, count: Int, dlogits: [Double]) {
        let M = targets.count
        let K = targets.filter { $0 != ignoreIndex }.count
        var total = 0.0
        var grad = [Double](repeating: 0, count: M * V)
        for m in 0..<M where targets[m] != ignoreIndex {
            let row = Array(logits[(m * V)..<((m + 1) * V)])
            let mx = row.max()!
            let sum = row.reduce(0) { $0 + exp($1 - mx) }
            let y = Int(targets[m])
            total += log(sum) + mx - row[y]
            for v in 0..<V {
                grad[m * V + v] = (exp(row[v] - mx) / sum - (v == y ? 1 : 0)) * dloss / Double(K)
            }
        }
        return (K > 0 ? total / Double(K) : 0, K, grad)
    }

    /// Softmax of every row.
    static func softmax(logits: [Double], V: Int) -> [Double] {
        var out = logits
        for m in 0..<(logits.count / V) {
            let row = logits[(m * V)..<((m + 1) * V)]
            let mx = row.max()!
            let sum = row.reduce(0) { $0 + exp($1 - mx) }
            for v in 0..<V { out[m * V + v] = exp(logits[m * V + v] - mx) / sum }
        }
        return out
    }

    /// param -= lr · grad.
    static func sgdStep(param: inout [Double], grad: [Double], lr: Double) {
        for i in param.indices { param[i] -= lr * grad[i] }
    }

    /// One bias-corrected Adam step (`step` from 1) with decoupled weight decay `param -= lr·wd·param`, the decay
    /// applied to the value before this step's update (AdamW).
    static func adamStep(param: inout [Double], m: inout [Double], v: inout [Double], grad: [Double],
                         lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, step: Int) {
        let c1 = 1 - pow(beta1, Double(step))
        let c2 = 1 - pow(beta2, Double(step))
        for i in param.indices {
            m[i] = beta1 * m[i] + (1 - beta1) * grad[i]
            v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i]
            let update = lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
            param[i] = param[i] - update - lr * weightDecay * param[i]
        }
    }

    /// Global-norm clipping: returns the norm before clipping and scales every gradient by
    /// `maxNorm / (norm + 1e-6)` when `maxNorm > 0` is finite and the norm exceeds it.
    @discardableResult
    static func clipGlobalNorm(_ grads: inout [[Double]], maxNorm: Double) -> Double {
        let norm = grads.joined().reduce(0) { $0 + $1 * $1 }.squareRoot()
        if maxNorm > 0, maxNorm.isFinite, norm > maxNorm {
            let scale = maxNorm / (norm + 1e-6)
            for i in grads.indices { grads[i] = grads[i].map { $0 * scale } }
        }
        return norm
    }
}

// MARK: - Tolerances and comparison

/// An absolute and a relative tolerance: `|actual - expected| <= absolute + relative · |expected|`.
struct NumericsTolerance: Sendable, CustomStringConvertible {
    var absolute: Double
    var relative: Double

    /// Exactly equal values: for copies (embedding lookup), zeroed buffers and repeated identical computations.
    static let exact = NumericsTolerance(absolute: 0, relative: 0)

    var description: String { "abs \(absolute) + rel \(relative)·|expected|" }
}

/// Whether `actual` lies within `tolerance` of `expected` (both must be finite, or both the same non-finite).
func isApproximatelyEqual(_ actual: Double, to expected: Double, tolerance: NumericsTolerance) -> Bool {
    guard actual.isFinite, expected.isFinite else { return actual == expected || (actual.isNaN && expected.isNaN) }
    return abs(actual - expected) <= tolerance.absolute + tolerance.relative * abs(expected)
}

/// The outcome of comparing two arrays elementwise: whether all pass, and the largest errors seen.
struct NumericsComparison: CustomStringConvertible {
    var passes: Bool
    /// The largest |actual - expected|.
    var maxAbsoluteError: Double
    /// The largest |actual - expected| / (absolute + relative·|expected|): ≤ 1 means within tolerance.
    var maxToleranceRatio: Double
    /// The index of the worst element (by tolerance ratio) and its values.
    var worst: (index: Int, actual: Double, expected: Double)?
    var countMismatch: (actual: Int, expected: Int)?
    var tolerance: NumericsTolerance

    var description: String {
        if let c = countMismatch { return "element counts differ: \(c.actual) vs \(c.expected)" }
        let w = worst.map { " worst [\($0.index)] \($0.actual) vs \($0.expected)" } ?? ""
        return "max abs error \(maxAbsoluteError), max error/tolerance \(maxToleranceRatio) (\(tolerance))\(w)"
    }
}

/// Compares elementwise and reports the maximum error.
func compareApproximately(_ actual: [Double], _ expected: [Double],
                          tolerance: NumericsTolerance) -> NumericsComparison {
    guard actual.count == expected.count else {
        return NumericsComparison(passes: false, maxAbsoluteError: .infinity, maxToleranceRatio: .infinity,
                                  worst: nil, countMismatch: (actual.count, expected.count), tolerance: tolerance)
    }
    var result = NumericsComparison(passes: true, maxAbsoluteError: 0, maxToleranceRatio: 0, worst: nil,
                                    countMismatch: nil, tolerance: tolerance)
    for i in actual.indices {
        let (a, e) = (actual[i], expected[i])
        if !isApproximatelyEqual(a, to: e, tolerance: tolerance) { result.passes = false }
        let error = a.isFinite && e.isFinite ? abs(a - e) : (a == e || (a.isNaN && e.isNaN) ? 0 : .infinity)
        let allowed = tolerance.absolute + tolerance.relative * abs(e)
        let ratio = error == 0 ? 0 : (allowed > 0 ? error / allowed : .infinity)
        result.maxAbsoluteError = max(result.maxAbsoluteError, error)
        if ratio > result.maxToleranceRatio || result.worst == nil {
            result.maxToleranceRatio = max(result.maxToleranceRatio, ratio)
            result.worst = (i, a, e)
        }
    }
    return result
}

/// `#expect`s that `actual` matches `expected` within `tolerance`; the message names `what` and the max error.
/// Returns the comparison so callers can log or aggregate the error.
@discardableResult
func expectApproximatelyEqual(_ actual: [Double], _ expected: [Double], tolerance: NumericsTolerance,
                              _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> NumericsComparison {
    let c = compareApproximately(actual, expected, tolerance: tolerance)
    #expect(c.passes, "\(what): \(c)", sourceLocation: sourceLocation)
    NumericsErrorLog.record(what, c)
    return c
}

@discardableResult
func expectApproximatelyEqual(_ actual: Tensor, _ expected: [Double], tolerance: NumericsTolerance,
                              _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> NumericsComparison {
    expectApproximatelyEqual(actual.scalars.map(Double.init), expected, tolerance: tolerance, what,
                             sourceLocation: sourceLocation)
}

@discardableResult
func expectApproximatelyEqual(_ actual: Double, _ expected: Double, tolerance: NumericsTolerance,
                              _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> NumericsComparison {
    expectApproximatelyEqual([actual], [expected], tolerance: tolerance, what, sourceLocation: sourceLocation)
}

/// Prints every comparison's largest error when the environment variable `RNNCORE_NUMERICS_LOG` is set, so that
/// tolerances can be reviewed against the errors actually observed.
enum NumericsErrorLog {
    static let enabled = ProcessInfo.processInfo.environment["RNNCORE_NUMERICS_LOG"] != nil

    static func record(_ what: String, _ c: NumericsComparison) {
        guard enabled else { return }
        print("[numerics] \(what): max abs \(c.maxAbsoluteError), ratio \(c.maxToleranceRatio)")
    }

    /// Prints a value worth reviewing (a perplexity reached, a margin) when logging is enabled.
    static func note(_ message: @autoclosure () -> String) {
        if enabled { print("[numerics] \(message())") }
    }
}

// MARK: - Test data and error checks

/// Deterministic test data from the library's portable generator.
struct NumericsData {
    var rng: Xoshiro256StarStar

    init(seed: UInt64) { rng = Xoshiro256StarStar(seed: seed) }

    /// Uniform values in [-scale, scale).
    mutating func uniform(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (rng.nextFloat() * 2 - 1) * scale }
    }

    /// A tensor of uniform values in [-scale, scale).
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        // The element count matches the shape by construction.
        try! Tensor(shape: shape, scalars: uniform(shape.reduce(1, *), scale: scale))
    }

    /// Token ids in [0, V).
    mutating func ids(_ count: Int, below V: Int) -> [Int32] {
        (0..<count).map { _ in Int32(rng.nextInt(below: V)) }
    }
}

extension Tensor {
    /// The elements widened to Double (exact).
    var widenedScalars: [Double] { scalars.map(Double.init) }
}

/// The kinds of ``RNNCoreError`` a test can demand.
enum NumericsErrorKind: Sendable, CustomStringConvertible {
    case shapeMismatch, invalidArgument, invalidState
    case kernel(KernelStatus)

    func matches(_ error: RNNCoreError) -> Bool {
        switch (self, error) {
        case (.shapeMismatch, .shapeMismatch), (.invalidArgument, .invalidArgument), (.invalidState, .invalidState):
            true
        case let (.kernel(expected), .kernel(status, _)):
            status == expected
        default:
            false
        }
    }

    var description: String {
        switch self {
        case .shapeMismatch: "shapeMismatch"
        case .invalidArgument: "invalidArgument"
        case .invalidState: "invalidState"
        case let .kernel(status): "kernel(\(status.rawValue))"
        }
    }
}

/// `#expect`s that `body` throws an ``RNNCoreError`` of the given kind.
func expectRNNCoreError(_ kind: NumericsErrorKind, sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: () throws -> Void) {
    let error = #expect(throws: RNNCoreError.self, sourceLocation: sourceLocation) { try body() }
    if let error {
        #expect(kind.matches(error), "expected \(kind), got \(error)", sourceLocation: sourceLocation)
    }
}
