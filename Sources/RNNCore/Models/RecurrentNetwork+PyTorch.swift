import Foundation

/// Why a PyTorch state dict could not become a RNNCore model.
///
/// Tensor names in these errors are the full names as given, prefix included.
public enum PyTorchImportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A tensor the module needs is absent.
    case missingTensor(name: String)
    /// A tensor under the prefix belongs to no parameter of the module.
    case unexpectedTensor(name: String)
    /// A tensor's shape does not fit the sizes implied by the others (or by the `cell` asked for).
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// A tensor is not float32 (`actual` is its safetensors dtype).
    case dtypeMismatch(name: String, actual: String)
    /// The module is of a kind RNNCore does not implement (an LSTM with `proj_size`, …).
    case unsupported(String)
    /// The safetensors file could not be read.
    case unreadableFile(CheckpointError)
    /// The tensors fit together but the model refused them (for example a size beyond its limits).
    case invalidModel(RNNCoreError)

    /// A one-sentence explanation.
    public var description: String {
        switch self {
        case .missingTensor(let name): "The PyTorch state dict has no tensor \"\(name)\"."
        case .unexpectedTensor(let name): "The PyTorch state dict has a tensor \"\(name)\" that belongs to no parameter."
        case let .shapeMismatch(name, expected, actual): "Tensor \"\(name)\" has shape \(actual), expected \(expected)."
        case let .dtypeMismatch(name, actual): "Tensor \"\(name)\" has dtype \(actual), expected F32."
        case .unsupported(let what): "Unsupported PyTorch module: \(what)."
        case .unreadableFile(let error): "Cannot read the PyTorch weights: \(error)"
        case .invalidModel(let error): "The PyTorch weights do not make a valid model: \(error)"
        }
    }
}

/// The weights of a `torch.nn.RNN` / `LSTM` / `GRU` state dict, translated to RNNCore's layout, with the sizes
/// inferred from their shapes.
struct PyTorchRecurrentWeights {
    var cell: CellKind
    var bidirectional: Bool
    /// Ordered `l·dirs + d`.
    var weights: [RecurrentNetwork.Weights]

    /// The parameter names of PyTorch's module: `weight_ih_l0`, …, `bias_hh_l1_reverse`.
    static let kinds = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]

    /// PyTorch's suffix of layer l, direction d: `_l0`, `_l0_reverse`.
    static func suffix(layer l: Int, direction d: Int) -> String { "_l\(l)" + (d == 1 ? "_reverse" : "") }

    /// Reads every tensor whose name starts with `prefix` (the others are ignored); each of them must belong to the
    /// module. `cell` and `bidirectional` are inferred when nil (the cell from `weight_hh_l0`: (H, H), (4H, H), (3H, H);
    /// the direction from the presence of `_reverse` names) and checked when given. A module built with
    /// `bias=False` has no bias tensors: its biases are zero.
    init(tensors: [String: Tensor], prefix: String, cell: CellKind?, bidirectional: Bool?) throws(PyTorchImportError) {
        var own: [String: Tensor] = [:]
        for (name, tensor) in tensors where name.hasPrefix(prefix) { own[String(name.dropFirst(prefix.count))] = tensor }

        // Layer indices from the names; a name outside the module's pattern is reported first.
        var topLayer = -1
        for name in own.keys.sorted() {
            guard let (kind, layer) = Self.parse(name) else { throw .unexpectedTensor(name: prefix + name) }
            if kind == "weight_hr" {
                throw .unsupported("\(prefix + name) belongs to an LSTM with proj_size > 0 (projected hidden states)")
            }
            topLayer = max(topLayer, layer)
        }
        func shape(_ name: String) throws(PyTorchImportError) -> [Int] {
            guard let t = own[name] else { throw .missingTensor(name: prefix + name) }
            return t.shape
        }

        // H and the cell from weight_hh_l0 (G, H); D from weight_ih_l0 (G, D).
        let hh = try shape("weight_hh_l0")
        guard hh.count == 2, hh[1] > 0, hh[0] > 0 else {
            throw .unsupported("\(prefix)weight_hh_l0 has shape \(hh), not (G, H) with G, H > 0")
        }
        let H = hh[1]
        let resolved: CellKind
        if let given = cell {
            resolved = given
        } else {
            // The first cell of the table with this gate count: (H, H) is the tanh RNN (PyTorch's default
            // nonlinearity; a relu RNN looks the same and needs `cell: .rnnRelu`), (4H, H) the LSTM, (3H, H) the GRU.
            guard let inferred = CellKind.allCases.first(where: { $0.specification.gateWidth(hiddenSize: H) == hh[0] }) else {
                let known = CellKind.allCases.map { "\($0.specification.displayName) (\($0.specification.gates == 1 ? "" : "\($0.specification.gates)")H, H)" }
                throw .unsupported("\(prefix)weight_hh_l0 has shape \(hh), which is none of " + known.joined(separator: ", "))
            }
            resolved = inferred
        }
        let spec = resolved.specification
        let G = spec.gateWidth(hiddenSize: H)
        guard hh[0] == G else { throw .shapeMismatch(name: prefix + "weight_hh_l0", expected: [G, H], actual: hh) }
        let ih = try shape("weight_ih_l0")
        guard ih.count == 2, ih[0] == G, ih[1] > 0 else {
            throw .shapeMismatch(name: prefix + "weight_ih_l0", expected: [G, ih.count == 2 ? max(ih[1], 1) : 1], actual: ih)
        }
        let D = ih[1]
        let reverseNames = own.keys.filter { $0.hasSuffix("_reverse") }.sorted()
        if bidirectional == false, let first = reverseNames.first { throw .unexpectedTensor(name: prefix + first) }
        let bidirectional = bidirectional ?? !reverseNames.isEmpty
        let dirs = bidirectional ? 2 : 1
        let hasBias = own.keys.contains { $0.hasPrefix("bias_") }

        var weights: [RecurrentNetwork.Weights] = []
        for l in 0...max(topLayer, 0) {
            for d in 0..<dirs {
                let s = Self.suffix(layer: l, direction: d)
                func take(_ kind: String, _ expected: [Int]) throws(PyTorchImportError) -> Tensor {
                    let name = kind + s
                    guard let t = own.removeValue(forKey: name) else { throw .missingTensor(name: prefix + name) }
                    guard t.shape == expected else {
                        throw .shapeMismatch(name: prefix + name, expected: expected, actual: t.shape)
                    }
                    return t
                }
                let wx = try take("weight_ih", [G, l == 0 ? D : dirs * H]).matrixTranspose()
                let wh = try take("weight_hh", [G, H]).matrixTranspose()
                var b = Tensor(zeros: [G])
                var hiddenBias: Tensor? = spec.hasHiddenBias ? Tensor(zeros: [G]) : nil
                if hasBias {
                    let (bi, bh) = (try take("bias_ih", [G]), try take("bias_hh", [G]))
                    if spec.hasHiddenBias {
                        b = bi
                        hiddenBias = bh
                    } else {
                        // PyTorch adds the two; a cell without a hidden bias holds their sum.
                        let out = b.writePointer()
                        withExtendedLifetime((bi, bh)) {
                            for j in 0..<G { out[j] = bi.readPointer[j] + bh.readPointer[j] }
                        }
                    }
                }
                weights.append(RecurrentNetwork.Weights(wx: wx, wh: wh, b: b, hiddenBias: hiddenBias))
            }
        }
        if let extra = own.keys.sorted().first { throw .unexpectedTensor(name: prefix + extra) }
        self.cell = resolved
        self.bidirectional = bidirectional
        self.weights = weights
    }

    /// The kind (`weight_ih`, …, `weight_hr`) and layer of a parameter name of PyTorch's module, or nil.
    private static func parse(_ name: String) -> (kind: String, layer: Int)? {
        var rest = Substring(name)
        if rest.hasSuffix("_reverse") { rest = rest.dropLast("_reverse".count) }
        guard let marker = rest.range(of: "_l", options: .backwards) else { return nil }
        let kind = String(rest[..<marker.lowerBound])
        let digits = rest[marker.upperBound...]
        guard kinds.contains(kind) || kind == "weight_hr", !digits.isEmpty, digits.allSatisfy(\.isASCII),
              digits.allSatisfy(\.isNumber), digits == "0" || !digits.hasPrefix("0"), let layer = Int(digits)
        else { return nil }
        return (kind, layer)
    }

    /// The state dict of weights in RNNCore's layout: `weight_ih = wxᵀ`, `weight_hh = whᵀ`, `bias_ih = b`, and
    /// `bias_hh` the hidden bias of a cell that keeps one (the GRU), else zeros.
    static func stateDict(_ weights: [RecurrentNetwork.Weights], bidirectional: Bool,
                          prefix: String) -> [String: Tensor] {
        let dirs = bidirectional ? 2 : 1
        var dict: [String: Tensor] = [:]
        for (k, w) in weights.enumerated() {
            let s = suffix(layer: k / dirs, direction: k % dirs)
            dict[prefix + "weight_ih" + s] = w.wx.matrixTranspose()
            dict[prefix + "weight_hh" + s] = w.wh.matrixTranspose()
            dict[prefix + "bias_ih" + s] = w.b
            dict[prefix + "bias_hh" + s] = w.hiddenBias ?? Tensor(zeros: w.b.shape)
        }
        return dict
    }

    /// The float32 tensors of a safetensors file whose names start with `prefix`, read as `[String: Tensor]`.
    static func read(_ url: URL, prefix: String) throws(PyTorchImportError) -> [String: Tensor] {
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile.read(from: url)
        } catch {
            throw .unreadableFile(error)
        }
        var tensors: [String: Tensor] = [:]
        for (name, named) in file.tensors where name.hasPrefix(prefix) {
            guard let values = named.floats else { throw .dtypeMismatch(name: name, actual: named.dtype.rawValue) }
            do {
                tensors[name] = try Tensor(shape: named.shape, scalars: values)
            } catch {
                throw .invalidModel(error)
            }
        }
        return tensors
    }

    /// Writes tensors as a safetensors file (float32, sorted names), as `safetensors.torch.save_file` would.
    static func write(_ tensors: [String: Tensor], to url: URL) throws(CheckpointError) {
        let named = tensors.mapValues { NamedTensor(shape: $0.shape, values: $0.scalars) }
        try SafeTensorsFile(tensors: named).write(to: url)
    }
}

extension RecurrentNetwork {
    /// Creates a network from the state dict of a `torch.nn.RNN`, `torch.nn.LSTM` or `torch.nn.GRU`:
    /// `weight_ih_l0` (G, D), `weight_hh_l0` (G, H), `bias_ih_l0` and `bias_hh_l0` (G), …, with `_reverse` names
    /// for the reverse direction. D, H and the layer count come from the shapes; the weights are transposed to
    /// RNNCore's layout and the two biases added (kept apart for the GRU, whose `bias_hh` is its hidden bias).
    /// - Parameters:
    ///   - tensors: the state dict; only the names that start with `prefix` are read, and each of those must be a
    ///     parameter of the module.
    ///   - prefix: the module's path in a larger state dict, such as `"rnn."` for a model that keeps it in
    ///     `self.rnn`; empty for the module's own state dict.
    ///   - cell: the module's cell; nil infers it from `weight_hh_l0` ((H, H): tanh RNN, (4H, H): LSTM, (3H, H):
    ///     GRU). A `torch.nn.RNN(nonlinearity='relu')` needs `.rnnRelu`: its state dict looks like a tanh RNN's.
    ///   - bidirectional: whether the module is bidirectional; nil infers it from the presence of `_reverse` names.
    ///   - dropout: the dropout between layers while training (PyTorch's `dropout` is not in the state dict).
    ///   - dropoutSeed: the seed of the dropout masks.
    /// - Throws: ``PyTorchImportError/missingTensor(name:)``, ``PyTorchImportError/unexpectedTensor(name:)``,
    ///   ``PyTorchImportError/shapeMismatch(name:expected:actual:)`` or ``PyTorchImportError/unsupported(_:)``.

    public convenience init(pyTorchStateDict tensors: [String: Tensor], prefix: String = "", cell: CellKind? = nil,
                            bidirectional: Bool? = nil, dropout: Float = 0,
                            dropoutSeed: UInt64 = 0) throws(PyTorchImportError) {
        let parsed = try PyTorchRecurrentWeights(tensors: tensors, prefix: prefix, cell: cell,
                                                 bidirectional: bidirectional)
        do {
            try self.init(cell: parsed.cell, bidirectional: parsed.bidirectional, weights: parsed.weights,
                          dropout: dropout, dropoutSeed: dropoutSeed)
        } catch {
            throw .invalidModel(error)
        }
    }

    /// Reads a network from a safetensors file with PyTorch's names (as written by
    /// `safetensors.torch.save_file(module.state_dict(), path)`), as
    /// ``init(pyTorchStateDict:prefix:cell:bidirectional:dropout:dropoutSeed:)`` does; tensors whose names do not
    /// start with `prefix` are not read.
    /// - Throws: ``PyTorchImportError/unreadableFile(_:)`` when the file cannot be read or is malformed,
    ///   ``PyTorchImportError/dtypeMismatch(name:actual:)`` for a tensor that is not float32, or an error of the
    ///   state-dict initialiser.
    public static func load(pyTorchSafeTensors url: URL, prefix: String = "", cell: CellKind? = nil,
                            bidirectional: Bool? = nil, dropout: Float = 0,
                            dropoutSeed: UInt64 = 0) throws(PyTorchImportError) -> RecurrentNetwork {
        try RecurrentNetwork(pyTorchStateDict: PyTorchRecurrentWeights.read(url, prefix: prefix), prefix: prefix,
                             cell: cell, bidirectional: bidirectional, dropout: dropout, dropoutSeed: dropoutSeed)
    }

    /// The weights under PyTorch's names, each prefixed with `prefix`: `weight_ih_l0 = wxᵀ`, `weight_hh_l0 = whᵀ`,
    /// `bias_ih_l0 = b` and `bias_hh_l0` = the GRU's hidden bias, or 0 for the other cells (PyTorch adds the two),
    /// `_reverse` for the reverse direction. `module.load_state_dict` of the module named by
    /// ``CellSpecification/pyTorchModule`` (with its `nonlinearity`) of the same sizes with `batch_first=True`
    /// accepts it.
    public func pyTorchStateDict(prefix: String = "") -> [String: Tensor] {
        PyTorchRecurrentWeights.stateDict(weights, bidirectional: bidirectional, prefix: prefix)
    }

    /// Writes ``pyTorchStateDict(prefix:)`` as a safetensors file, which `safetensors.torch.load_file` reads.
    /// - Throws: ``CheckpointError/fileSystem(path:reason:)`` when the file cannot be written.
    public func writePyTorchSafeTensors(to url: URL, prefix: String = "") throws(CheckpointError) {
        try PyTorchRecurrentWeights.write(pyTorchStateDict(prefix: prefix), to: url)
    }
}
