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
    /// left as it was before the call. With a `communicator` of K ranks (each holding the same model and text),
    /// each rank scores its share of the streams and the sums are added across ranks: every rank gets the
    /// perplexity of all streams.
    public func perplexity(on ids: [Int32], batchSize: Int = 1, bptt: Int = 35,
                           communicator: (any Communicator)? = nil) throws(RNNCoreError) -> Double {
        let (loss, _) = try meanLoss(on: ids, batchSize: batchSize, bptt: bptt, communicator: communicator)
        return exp(loss)
    }

    /// The mean cross-entropy (nats per token) and the number of predictions, as used by
    /// ``perplexity(on:batchSize:bptt:communicator:)``.
    public func meanLoss(on ids: [Int32], batchSize: Int = 1, bptt: Int = 35,
                         communicator: (any Communicator)? = nil) throws(RNNCoreError) -> (loss: Double, count: Int) {
        guard ids.count >= 2 else { throw .invalidArgument("perplexity needs at least 2 tokens, got \(ids.count)") }
        guard batchSize >= 1, bptt >= 1 else { throw .invalidArgument("batch size and bptt must be positive") }
        let predictions = ids.count - 1
        let N = min(batchSize, predictions)
        let streamLength = (predictions + N - 1) / N
        let padding: Int32 = -1
        // This rank's streams: a contiguous block of the N (all of them without a communicator).
        let (rank, ranks) = (communicator?.rank ?? 0, communicator?.size ?? 1)
        let streams = (rank * N / ranks)..<((rank + 1) * N / ranks)

        let saved = state
        defer { try? restoreState(saved) }
        resetState()

        var sums = [0.0, 0.0]  // the loss summed over this rank's predictions, and their count
        var start = 0
        while start < streamLength && !streams.isEmpty {
            let T = min(bptt, streamLength - start)
            let n = streams.count
            var inputs = [Int32](repeating: 0, count: n * T)
            var targets = [Int32](repeating: padding, count: n * T)
            for (row, stream) in streams.enumerated() {
                for t in 0..<T {
                    let position = stream * streamLength + start + t
                    guard position < predictions else { continue }
                    inputs[row * T + t] = ids[position]
                    targets[row * T + t] = ids[position + 1]
                }
            }
            let (loss, count) = try self.loss(ids: inputs, targets: targets, batchSize: n, ignoreIndex: padding)
            sums[0] += loss * Double(count)
            sums[1] += Double(count)
            start += T
        }
        if let communicator {
            do {
                try sums.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
            } catch {
                throw .invalidState("evaluation across \(ranks) ranks failed: \(error)")
            }
        }
        let counted = Int(sums[1])
        precondition(counted == predictions, "perplexity counted \(counted) of \(predictions) predictions")
        return (sums[0] / sums[1], counted)
    }
}
