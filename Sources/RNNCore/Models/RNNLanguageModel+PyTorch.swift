import Foundation

/// Import and export in the layout of PyTorch's word-level language model example (pytorch/examples,
/// `word_language_model/model.py`, `RNNModel` with `rnn_type` `RNN_TANH`, `RNN_RELU`, `LSTM` or `GRU`): `encoder.weight` (V, D), the
/// `torch.nn.RNN`/`LSTM` under `rnn.`, `decoder.weight` (V, H) and `decoder.bias` (V).
extension RNNLanguageModel {
    /// Creates a model from the state dict of PyTorch's word-level language model example.
    ///
    /// The sizes and the cell come from the shapes: `encoder.weight` gives V and D, `rnn.weight_hh_l0` gives H and
    /// the cell, the `rnn.weight_ih_l*` names the layer count. The recurrent weights are translated as
    /// ``RecurrentNetwork/init(pyTorchStateDict:prefix:cell:bidirectional:dropout:dropoutSeed:)`` does and the
    /// decoder weight is transposed. Tied weights (`--tied`) are recognised by a `decoder.weight` equal to
    /// `encoder.weight`, or by its absence (safetensors files store a shared tensor once). An
    /// `AdaptiveLogSoftmaxWithLoss` in place of the decoder (`decoder.head.weight`, `decoder.head.bias` if any,
    /// `decoder.tail.i.0.weight`, `decoder.tail.i.1.weight`) gives an adaptive-softmax model; its cutoffs and
    /// `div_value` are read from the shapes.
    /// - Parameters:
    ///   - tensors: the state dict; only names that start with `prefix` are read, and each must belong to the model.
    ///   - prefix: the model's path in a larger state dict; empty for `model.state_dict()` itself.
    ///   - cell: the recurrent cell; nil infers it from the shapes (`RNN_RELU` needs `.rnnRelu`).
    ///   - dropout: the model's dropout probability while training (not part of the state dict).
    ///   - dropoutSeed: the seed of the dropout masks.
    /// - Throws: ``PyTorchImportError``: a missing, unexpected or mis-shaped tensor, a bidirectional or otherwise
    ///   unsupported recurrent module, or ``PyTorchImportError/invalidModel(_:)`` for sizes the model refuses.
    public convenience init(pyTorchWordLanguageModel tensors: [String: Tensor], prefix: String = "",
                            cell: CellKind? = nil, dropout: Float = 0, dropoutSeed: UInt64 = 0) throws(PyTorchImportError) {
        var own: [String: Tensor] = [:]
        for (name, tensor) in tensors where name.hasPrefix(prefix) { own[String(name.dropFirst(prefix.count))] = tensor }
        func take(_ name: String) throws(PyTorchImportError) -> Tensor {
            guard let t = own.removeValue(forKey: name) else { throw .missingTensor(name: prefix + name) }
            return t
        }
        let encoder = try take("encoder.weight")
        guard encoder.shape.count == 2, encoder.shape[0] > 0, encoder.shape[1] > 0 else {
            throw .unsupported("\(prefix)encoder.weight has shape \(encoder.shape), not (V, D) with V, D > 0")
        }
        let (V, D) = (encoder.shape[0], encoder.shape[1])
        let parsed = try PyTorchRecurrentWeights(tensors: tensors, prefix: prefix + "rnn.", cell: cell,
                                                 bidirectional: nil)
        own = own.filter { !$0.key.hasPrefix("rnn.") }
        guard !parsed.bidirectional else {
            throw .unsupported("\(prefix)rnn is bidirectional; a language model reads its text in one direction")
        }
        let H = parsed.weights[0].wh.shape[0]
        let layer0Input = parsed.weights[0].wx.shape[0]
        guard layer0Input == D else {
            let G = parsed.weights[0].wh.shape[1]
            throw .shapeMismatch(name: prefix + "rnn.weight_ih_l0", expected: [G, D], actual: [G, layer0Input])
        }
        var configuration = Configuration(vocabularySize: V, embeddingSize: D, hiddenSize: H,
                                          layers: parsed.weights.count, cell: parsed.cell, dropout: dropout)
        var ours: [String: Tensor] = ["embedding.weight": encoder]
        if own["decoder.head.weight"] != nil {
            let adaptive = try AdaptiveSoftmax.parsePyTorchStateDict(own, prefix: "decoder.", namePrefix: prefix,
                                                                    vocabularySize: V, inputSize: H)
            own = own.filter { !$0.key.hasPrefix("decoder.") }
            (configuration.softmax, configuration.cutoffs, configuration.divValue) = (.adaptive, adaptive.cutoffs,
                                                                                      adaptive.divValue)
            ours.merge(adaptive.tensors) { a, _ in a }
        } else {
            let bias = try take("decoder.bias")
            guard bias.shape == [V] else {
                throw .shapeMismatch(name: prefix + "decoder.bias", expected: [V], actual: bias.shape)
            }
            ours["output.bias"] = bias
            // Tied (`--tied`): decoder.weight is the encoder's tensor, or left out of the file as a duplicate.
            if let decoder = own.removeValue(forKey: "decoder.weight"), decoder != encoder {
                guard decoder.shape == [V, H] else {
                    throw .shapeMismatch(name: prefix + "decoder.weight", expected: [V, H], actual: decoder.shape)
                }
                ours["output.weight"] = decoder.matrixTranspose()
            } else {
                configuration.tiedWeights = true
            }
        }
        if let extra = own.keys.sorted().first { throw .unexpectedTensor(name: prefix + extra) }

        let spec = parsed.cell.specification
        for (l, w) in parsed.weights.enumerated() {
            for p in spec.parameters { ours["\(parsed.cell.rawValue).\(l).\(p.name)"] = w.tensor(p.role) }
        }
        do {
            try self.init(configuration: configuration, tensors: ours, dropoutSeed: dropoutSeed)
        } catch {
            throw .invalidModel(error)
        }
    }

    /// Reads a model from a safetensors file holding the state dict of PyTorch's word-level language model example
    /// (for example `safetensors.torch.save_file(model.state_dict(), path)`), as
    /// ``init(pyTorchWordLanguageModel:prefix:cell:dropout:dropoutSeed:)`` does.
    /// - Throws: ``PyTorchImportError/unreadableFile(_:)``, ``PyTorchImportError/dtypeMismatch(name:actual:)`` or an
    ///   error of the state-dict initialiser.
    public static func load(pyTorchWordLanguageModel url: URL, prefix: String = "", cell: CellKind? = nil,
                            dropout: Float = 0, dropoutSeed: UInt64 = 0) throws(PyTorchImportError) -> RNNLanguageModel {
        try RNNLanguageModel(pyTorchWordLanguageModel: PyTorchRecurrentWeights.read(url, prefix: prefix),
                             prefix: prefix, cell: cell, dropout: dropout, dropoutSeed: dropoutSeed)
    }

    /// The parameters under the names of PyTorch's word-level language model example, each prefixed with
    /// `prefix`: `encoder.weight`, `rnn.weight_ih_l0` (= wxᵀ), …, `rnn.bias_hh_l0` (zeros), `decoder.weight`
    /// (= output weightᵀ, the encoder's values when tied), `decoder.bias`; or the `AdaptiveLogSoftmaxWithLoss`
    /// tensors under `decoder.` (with `head.bias`: build the module with `head_bias=True`).
    public func pyTorchWordLanguageModelStateDict(prefix: String = "") -> [String: Tensor] {
        var dict = PyTorchRecurrentWeights.stateDict(network.weights, bidirectional: false, prefix: prefix + "rnn.")
        dict[prefix + "encoder.weight"] = embedding.weight.value
        dict.merge(output.pyTorchStateDict(prefix: prefix + "decoder.")) { a, _ in a }
        return dict
    }
}
