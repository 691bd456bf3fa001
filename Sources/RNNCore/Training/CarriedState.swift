// The state a stateful model carries from one truncated-BPTT window to the next, by name, so that a training run
// can be saved between two windows and resumed bit for bit. It names the entries of the positional form,
// RNNLanguageModel.state / restoreState (Evaluation.swift).

extension RNNLanguageModel {
    /// The name of position `index` of layer `layer`'s carried state: `"rnn.0.h"`, `"rnn.1.c"` (the cell's
    /// ``CellSpecification/stateNames``).
    func carriedStateName(layer: Int, index: Int) -> String {
        let names = configuration.cell.specification.stateNames
        return "rnn.\(layer)." + (index < names.count ? names[index] : "s\(index)")
    }

    /// Everything the recurrent layers carry from one window to the next (each layer's
    /// ``RecurrentLayer/carriedState``), by name: `"rnn.<layer>.h"` for a hidden state and `"rnn.<layer>.c"` for an
    /// LSTM's cell state, each (N, H). A layer whose next window starts from zeros has no entry. Put it back with
    /// ``restoreCarriedState(_:)``.
    public var carriedState: [String: Tensor] {
        var named: [String: Tensor] = [:]
        for (l, tensors) in state.enumerated() {
            for (i, tensor) in tensors.enumerated() { named[carriedStateName(layer: l, index: i)] = tensor }
        }
        return named
    }

    /// Puts back state captured with ``carriedState``: every layer gets its tensors, and a layer without any
    /// starts its next window from zeros.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for a name that belongs to no layer (before any layer
    ///   changes), or the layer's ``RNNCoreError/shapeMismatch(_:)`` for too few tensors or a wrong shape.
    public func restoreCarriedState(_ state: [String: Tensor]) throws(RNNCoreError) {
        var remaining = state
        var perLayer: [[Tensor]] = []
        for l in network.recurrentLayers.indices {
            var tensors: [Tensor] = []
            while let tensor = remaining.removeValue(forKey: carriedStateName(layer: l, index: tensors.count)) {
                tensors.append(tensor)
            }
            perLayer.append(tensors)
        }
        if let extra = remaining.keys.sorted().first {
            throw .invalidArgument("no layer of this model carries a state named \(extra) (or an earlier part of that layer's state is missing)")
        }
        try restoreState(perLayer)
    }
}
