// A plain double-precision reference of RecurrentNetwork (stacked, optionally bidirectional tanh or relu RNN, LSTM
// or GRU, each written out from PyTorch's documented equations), and
// the PyTorch fixtures of Tests/RNNCoreTests/Fixtures/pytorch (written by examples/pytorch/make_fixtures.py).
//
// The reference follows PyTorch's documented semantics with straight loops, written for clarity, not speed: layer
// l+1 reads layer l's outputs (forward and reverse concatenated), the reverse direction reads the sequence from
// t = T-1 down to 0, and h_n, c_n hold layer l's direction d at index l·dirs + d.

import Foundation
import RNNCore
import Testing

/// Double-precision reference of ``RecurrentNetwork``.
struct RecurrentReference {
    /// The weights of one layer and direction in RNNCore's layout: wx (D_l, G), wh (H, G), b (G), and the GRU's
    /// hidden bias bh (G; zeros for the other cells).
    struct Weights {
        var wx: [Double], wh: [Double], b: [Double], bh: [Double]
    }

    var cell: CellKind
    var D: Int, H: Int, L: Int
    var bidirectional: Bool
    /// Ordered l·dirs + d.
    var weights: [Weights]

    var dirs: Int { bidirectional ? 2 : 1 }
    var G: Int { cell.specification.gateWidth(hiddenSize: H) }
    var hasCellState: Bool { cell.specification.stateCount == 2 }

    /// The reference of a network's current weights (widened exactly).
    init(_ network: RecurrentNetwork) {
        cell = network.cell
        (D, H, L, bidirectional) = (network.inputSize, network.hiddenSize, network.layers, network.bidirectional)
        weights = network.weights.map {
            Weights(wx: $0.wx.widenedScalars, wh: $0.wh.widenedScalars, b: $0.b.widenedScalars,
                    bh: $0.hiddenBias?.widenedScalars ?? [Double](repeating: 0, count: $0.b.count))
        }
    }

    /// One direction over xs (N, T, width) in the order given, from h0 and c0 (N, H each; c0 ignored for an RNN).
    /// Returns every hidden state (N, T, H) in the same order and the last h and c (N, H).
    func run(_ w: Weights, xs: [Double], width: Int, h0: [Double], c0: [Double], N: Int, T: Int)
        -> (hs: [Double], h: [Double], c: [Double]) {
        var hs = [Double](repeating: 0, count: N * T * H)
        var hLast = h0, cLast = c0
        for n in 0..<N {
            var h = Array(h0[(n * H)..<((n + 1) * H)]), c = Array(c0[(n * H)..<((n + 1) * H)])
            for t in 0..<T {
                // a = x·Wx + b and u = h·Wh + bh, kept apart for the GRU's r ⊙ u_n.
                var a = w.b, u = w.bh
                for g in 0..<G {
                    for k in 0..<width { a[g] += xs[(n * T + t) * width + k] * w.wx[k * G + g] }
                    for k in 0..<H { u[g] += h[k] * w.wh[k * G + g] }
                }
                let sigmoid = { (x: Double) in 1 / (1 + exp(-x)) }
                switch cell {
                case .rnn:
                    h = (0..<H).map { tanh(a[$0] + u[$0]) }
                case .rnnRelu:
                    h = (0..<H).map { max(0, a[$0] + u[$0]) }
                case .lstm:
                    let z = (0..<G).map { a[$0] + u[$0] }
                    for j in 0..<H {
                        let (i, f, g, o) = (sigmoid(z[j]), sigmoid(z[H + j]), tanh(z[2 * H + j]), sigmoid(z[3 * H + j]))
                        c[j] = f * c[j] + i * g
                        h[j] = o * tanh(c[j])
                    }
                case .gru:
                    for j in 0..<H {
                        let r = sigmoid(a[j] + u[j]), z = sigmoid(a[H + j] + u[H + j])
                        let candidate = tanh(a[2 * H + j] + r * u[2 * H + j])
                        h[j] = (1 - z) * candidate + z * h[j]
                    }
                }
                for j in 0..<H { hs[(n * T + t) * H + j] = h[j] }
            }
            for j in 0..<H { (hLast[n * H + j], cLast[n * H + j]) = (h[j], c[j]) }
        }
        return (hs, hLast, cLast)
    }

    /// xs (N, T, C) reversed along T.
    static func reversed(_ xs: [Double], N: Int, T: Int, C: Int) -> [Double] {
        var out = xs
        for n in 0..<N {
            for t in 0..<T {
                for k in 0..<C { out[(n * T + T - 1 - t) * C + k] = xs[(n * T + t) * C + k] }
            }
        }
        return out
    }

    /// The outputs (N, T, dirs·H) and final states h_n, c_n (L·dirs, N, H) from h0 and c0 (L·dirs, N, H; c0 is
    /// ignored for an RNN, whose c_n is returned as zeros).
    func forward(xs: [Double], h0: [Double], c0: [Double], N: Int, T: Int)
        -> (outputs: [Double], h: [Double], c: [Double]) {
        var input = xs, width = D
        var hn = [Double](repeating: 0, count: L * dirs * N * H), cn = hn
        for l in 0..<L {
            var output = [Double](repeating: 0, count: N * T * dirs * H)
            for d in 0..<dirs {
                let k = l * dirs + d
                let state = (k * N * H)..<((k + 1) * N * H)
                let sequence = d == 0 ? input : Self.reversed(input, N: N, T: T, C: width)
                var (hs, h, c) = run(weights[k], xs: sequence, width: width, h0: Array(h0[state]),
                                     c0: hasCellState ? Array(c0[state]) : [Double](repeating: 0, count: N * H),
                                     N: N, T: T)
                if d == 1 { hs = Self.reversed(hs, N: N, T: T, C: H) }
                for m in 0..<(N * T) {
                    for j in 0..<H { output[m * dirs * H + d * H + j] = hs[m * H + j] }
                }
                hn.replaceSubrange(state, with: h)
                if hasCellState { cn.replaceSubrange(state, with: c) }
            }
            (input, width) = (output, dirs * H)
        }
        return (input, hn, cn)
    }
}

/// The fixtures written by examples/pytorch/make_fixtures.py, read through #filePath like fuzz/regressions.
enum PyTorchFixtures {
    /// Tests/RNNCoreTests/Fixtures/pytorch.
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pytorch")

    /// The fixture `name` (without the extension).
    static func url(_ name: String) -> URL { folder.appendingPathComponent("\(name).safetensors") }

    /// The F32 tensor `name` of a fixture file.
    static func tensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
        let named = try #require(file.tensors[name], "fixture tensor \(name)")
        return try Tensor(shape: named.shape, scalars: file.floats(named: name))
    }
}

extension Array where Element == Double {
    /// The (C, R) transpose of a row-major (R, C) matrix.
    func transposed(rows R: Int, columns C: Int) -> [Double] {
        precondition(count == R * C)
        var out = self
        for r in 0..<R {
            for c in 0..<C { out[c * R + r] = self[r * C + c] }
        }
        return out
    }
}
