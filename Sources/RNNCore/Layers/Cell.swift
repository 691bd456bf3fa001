import CRNNCore

/// The recurrent cell of a layer.
///
/// Everything that depends on the cell (gate count, carried states, parameter names and shapes, C kernels,
/// PyTorch names) is in its ``specification``; nothing else in RNNCore switches on the cell kind.
public enum CellKind: String, Codable, Sendable, CaseIterable {
    /// The tanh RNN: h = tanh(x·Wx + h·Wh + b).
    case rnn
    /// The ReLU RNN: h = max(0, x·Wx + h·Wh + b), PyTorch's `nn.RNN(nonlinearity='relu')`.
    case rnnRelu = "rnn-relu"
    /// The LSTM with input, forget, cell and output gates (PyTorch's gate order i, f, g, o).
    case lstm
    /// The gated recurrent unit (PyTorch's `nn.GRU`, gates r, z, n, with the hidden bias inside r ⊙ (…)).
    case gru

    /// The description of this cell: its entry in the cell table.
    public var specification: CellSpecification { CellSpecification.table[self]! }
}

/// The description of one recurrent cell: the cell table's entry that layers, stacks, checkpoints, PyTorch
/// import and export, the command line and the benchmark read.
///
/// Adding a cell takes one C file (the kernels behind `rnncore_<cell>_sizes/forward/backward`), one entry in
/// `CellSpecification.table` and its tests.
public struct CellSpecification: Sendable {
    /// What a parameter of the cell is for; fixes its shape, its C argument and its PyTorch name.
    public enum Role: Sendable, Equatable {
        /// Wx, (D, G): PyTorch's `weight_ih` transposed.
        case inputWeight
        /// Wh, (H, G): PyTorch's `weight_hh` transposed.
        case hiddenWeight
        /// b, (G): PyTorch's `bias_ih`, plus `bias_hh` for a cell without a hidden bias.
        case bias
        /// The bias added to h·Wh before the gates see it, (G): PyTorch's `bias_hh` (the GRU's `b_hn` sits inside
        /// r ⊙ (h·Whn + b_hn), so it cannot be folded into b).
        case hiddenBias
    }

    /// One parameter tensor of a cell.
    public struct Parameter: Sendable, Equatable {
        /// The last part of the parameter's name (`"wx"`, `"wh"`, `"b"`, `"bh"`).
        public let name: String
        /// What it is for.
        public let role: Role

        /// Its shape for input size D, hidden size H and G gate columns.
        public func shape(inputSize D: Int, hiddenSize H: Int, gateWidth G: Int) -> [Int] {
            switch role {
            case .inputWeight: [D, G]
            case .hiddenWeight: [H, G]
            case .bias, .hiddenBias: [G]
            }
        }

        /// The name of the tensor in a PyTorch state dict, without the layer suffix (`_l0`, `_l0_reverse`).
        public var pyTorchName: String {
            switch role {
            case .inputWeight: "weight_ih"
            case .hiddenWeight: "weight_hh"
            case .bias: "bias_ih"
            case .hiddenBias: "bias_hh"
            }
        }
    }

    /// The C kernels of a cell: `rnncore_<cell>_sizes`, `_forward`, `_backward` (include/rnncore.h).
    struct Kernels: Sendable {
        typealias Sizes = @convention(c) (UnsafeMutablePointer<rnncore_cell_sizes>?, UnsafePointer<rnncore_window>?)
            -> rnncore_status
        typealias Forward = @convention(c) (
            UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?,
            UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<rnncore_cell_weights>?,
            UnsafePointer<rnncore_window>?) -> rnncore_status
        typealias Backward = @convention(c) (
            UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafePointer<rnncore_cell_gradients>?,
            UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
            UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
            UnsafePointer<rnncore_cell_weights>?, UnsafePointer<rnncore_window>?) -> rnncore_status
        let sizes: Sizes
        let forward: Forward
        let backward: Backward
    }

    /// The cell.
    public let kind: CellKind
    /// A short name for people: "tanh RNN", "LSTM", ….
    public let displayName: String
    /// The cell's equations in one line.
    public let formula: String
    /// The number of H-wide gate blocks in Wx, Wh and b: G = gates·H.
    public let gates: Int
    /// The names of the (N, H) states carried from one step to the next: `["h"]`, or `["h", "c"]` for the LSTM.
    public let stateNames: [String]
    /// The parameters of one layer, in their fixed order.
    public let parameters: [Parameter]
    /// The PyTorch module with this cell (`"RNN"`, `"LSTM"`, `"GRU"`).
    public let pyTorchModule: String
    /// The module's `nonlinearity` argument, for `torch.nn.RNN`; nil for the others.
    public let pyTorchNonlinearity: String?
    let kernels: Kernels

    /// S, the number of carried states.
    public var stateCount: Int { stateNames.count }
    /// G, the width of the gate pre-activations for hidden size H.
    public func gateWidth(hiddenSize H: Int) -> Int { gates * H }
    /// Whether the cell keeps a hidden bias apart from b (the GRU).
    public var hasHiddenBias: Bool { parameters.contains { $0.role == .hiddenBias } }

    /// The multiply-adds of one layer's forward pass per token: the input projection (D·G) and the recurrent
    /// product (H·G); the element-wise gate math is not counted.
    public func forwardMultiplyAdds(inputSize D: Int, hiddenSize H: Int) -> Int { (D + H) * gateWidth(hiddenSize: H) }

    /// The cell table.
    static let table: [CellKind: CellSpecification] = {
        let plain: [Parameter] = [.init(name: "wx", role: .inputWeight), .init(name: "wh", role: .hiddenWeight),
                                  .init(name: "b", role: .bias)]
        let entries = [
            CellSpecification(
                kind: .rnn, displayName: "tanh RNN", formula: "h = tanh(x·Wx + h·Wh + b)", gates: 1,
                stateNames: ["h"], parameters: plain, pyTorchModule: "RNN", pyTorchNonlinearity: "tanh",
                kernels: Kernels(sizes: rnncore_rnn_sizes, forward: rnncore_rnn_forward, backward: rnncore_rnn_backward)),
            CellSpecification(
                kind: .rnnRelu, displayName: "ReLU RNN", formula: "h = max(0, x·Wx + h·Wh + b)", gates: 1,
                stateNames: ["h"], parameters: plain, pyTorchModule: "RNN", pyTorchNonlinearity: "relu",
                kernels: Kernels(sizes: rnncore_rnn_relu_sizes, forward: rnncore_rnn_relu_forward,
                                 backward: rnncore_rnn_relu_backward)),
            CellSpecification(
                kind: .lstm, displayName: "LSTM",
                formula: "i, f, o = σ(·), g = tanh(·) of x·Wx + h·Wh + b; c = f⊙c + i⊙g; h = o⊙tanh(c)", gates: 4,
                stateNames: ["h", "c"], parameters: plain, pyTorchModule: "LSTM", pyTorchNonlinearity: nil,
                kernels: Kernels(sizes: rnncore_lstm_sizes, forward: rnncore_lstm_forward,
                                 backward: rnncore_lstm_backward)),
            CellSpecification(
                kind: .gru, displayName: "GRU",
                formula: "r, z = σ(x·Wx + b + h·Wh + bh); n = tanh(x·Wxn + bn + r⊙(h·Whn + bhn)); h = (1-z)⊙n + z⊙h",
                gates: 3, stateNames: ["h"], parameters: plain + [.init(name: "bh", role: .hiddenBias)],
                pyTorchModule: "GRU", pyTorchNonlinearity: nil,
                kernels: Kernels(sizes: rnncore_gru_sizes, forward: rnncore_gru_forward, backward: rnncore_gru_backward)),
        ]
        return Dictionary(uniqueKeysWithValues: entries.map { ($0.kind, $0) })
    }()

    /// The names and shapes of one layer's parameters, each name prefixed with `prefix` and a dot.
    public func parameterShapes(prefix: String, inputSize D: Int,
                                hiddenSize H: Int) -> [(name: String, shape: [Int])] {
        parameters.map { ("\(prefix).\($0.name)", $0.shape(inputSize: D, hiddenSize: H, gateWidth: gateWidth(hiddenSize: H))) }
    }

    /// What the kernels need for a window: the cache and workspace floats, or nil when the sizes are out of
    /// range (non-positive or overflowing).
    func bufferSizes(_ window: rnncore_window) -> (cache: Int, workspace: Int)? {
        var sizes = rnncore_cell_sizes()
        var w = window
        guard kernels.sizes(&sizes, &w) == RNNCORE_OK else { return nil }
        return (Int(sizes.cache), Int(sizes.workspace))
    }

    /// A one-line list of the cells for help texts: "rnn (tanh RNN), rnn-relu (ReLU RNN), lstm (LSTM), gru (GRU)".
    public static var helpList: String {
        CellKind.allCases.map { "\($0.rawValue) (\($0.specification.displayName))" }.joined(separator: ", ")
    }
}
