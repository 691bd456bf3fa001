import Foundation

extension RNNLanguageModel {
    /// The state every recurrent layer carries to the next window (``RecurrentLayer/carriedState``: `[h]`, or
    /// `[h, c]` for an LSTM layer, empty where a layer has none yet).
    public var state: [[Tensor]] { network.recurrentLayers.map(\.carriedState) }

    /// Restores states captured with ``state``.
    public func restoreState(_ state: [[Tensor]]) throws(RNNCoreError) {
        let layers = network.recurrentLayers
        guard state.count == layers.count else {
            throw .shapeMismatch("\(state.count) states for \(layers.count) layers")
        }
        for (layer, s) in zip(layers, state) { try layer.setCarriedState(s) }
    }

    /// The perplexity of the model on a token sequence: exp of the mean cross-entropy of predicting every token
    /// after the first from all tokens before it.
    ///
    /// The text is cut into `batchSize` contiguous streams, each read from a zero state in windows of `bptt`
    /// steps with the hidden state carried across windows. Every one of the `ids.count - 1` predictions counts
    /// exactly once: the last stream is padded and the padding is excluded from the mean. With `batchSize` 1
    /// (the default) this is the exact stateful perplexity over the whole text. The model's hidden state is
    /// left as it was before the call.
    public func perplexity(on ids: [Int32], batchSize: Int = 1, bptt: Int = 35) throws(RNNCoreError) -> Double {
        let (loss, _) = try meanLoss(on: ids, batchSize: batchSize, bptt: bptt)
        return exp(loss)
    }

    /// The mean cross-entropy (nats per token) and the number of predictions, as used by ``perplexity(on:batchSize:bptt:)``.
    public func meanLoss(on ids: [Int32], batchSize: Int = 1, bptt: Int = 35) throws(RNNCoreError) -> (loss: Double, count: Int) {
        guard ids.count >= 2 else { throw .invalidArgument("perplexity needs at least 2 tokens, got \(ids.count)") }
        guard batchSize >= 1, bptt >= 1 else { throw .invalidArgument("batch size and bptt must be positive") }
        let predictions = ids.count - 1
        let N = min(batchSize, predictions)
        let streamLength = (predictions + N - 1) / N
        let padding: Int32 = -1

        let saved = state
        defer { try? restoreState(saved) }
        resetState()

        var total = 0.0
        var counted = 0
        var start = 0
        while start < streamLength {
            let T = min(bptt, streamLength - start)
            var inputs = [Int32](repeating: 0, count: N * T)
            var targets = [Int32](repeating: padding, count: N * T)
            for n in 0..<N {
                for t in 0..<T {
                    let position = n * streamLength + start + t
                    guard position < predictions else { continue }
                    inputs[n * T + t] = ids[position]
                    targets[n * T + t] = ids[position + 1]
                }
            }
            let (loss, count) = try self.loss(ids: inputs, targets: targets, batchSize: N, ignoreIndex: padding)
            total += loss * Double(count)
            counted += count
            start += T
        }
        precondition(counted == predictions, "perplexity counted \(counted) of \(predictions) predictions")
        return (total / Double(counted), counted)
    }
}
