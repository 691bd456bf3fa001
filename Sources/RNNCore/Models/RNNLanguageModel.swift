/// The recurrent cell of a layer.
public enum CellKind: String, Codable, Sendable, CaseIterable {
    /// The tanh RNN: h = tanh(x·Wx + h·Wh + b).
    case rnn
    /// The LSTM with input, forget, cell and output gates (PyTorch's gate order i, f, g, o).
    case lstm
}

/// How tokens enter a language model.
public enum InputEncoding: String, Codable, Sendable, CaseIterable {
    /// A trained (V, D) embedding table.
    case embedding
    /// One-hot vectors of size V (no trained parameters; for small vocabularies such as characters).
    case oneHot = "one-hot"
}

/// An RNN language model: embedding → L stacked recurrent layers (tanh RNN or LSTM) → affine → softmax
/// cross-entropy.
///
/// The textbook's SimpleRnnlm, generalised to several layers, the LSTM cell, and dropout on every non-recurrent
/// connection (embedding output, between layers, before the output layer; training only), as in Zaremba et al.'s
/// regularised LSTM language models. Inputs are token ids in batch-major order: N streams
/// of T consecutive tokens, `ids[n*T + t]`. The recurrent layers are stateful, so consecutive windows of the same
/// streams continue each other; call ``resetState()`` between unrelated texts.
public final class RNNLanguageModel {
    /// The sizes that define a model (stored in checkpoints).
    public struct Configuration: Codable, Sendable, Equatable {
        /// V, the number of token types.
        public var vocabularySize: Int
        /// D, the size of a token embedding (equal to V with one-hot inputs).
        public var embeddingSize: Int
        /// How tokens enter the first recurrent layer: a trained embedding, or one-hot vectors (a fixed identity
        /// table, for small character vocabularies: V ≤ ``oneHotLimit``).
        public var input: InputEncoding
        /// H, the size of each hidden state.
        public var hiddenSize: Int
        /// L, the number of stacked recurrent layers.
        public var layers: Int
        /// The recurrent cell of every layer.
        public var cell: CellKind
        /// The probability of zeroing an activation between layers and before the output layer while training
        /// (inverted dropout: kept values are scaled by 1/(1-p)); 0 disables dropout.
        public var dropout: Float

        /// Creates a configuration.
        ///
        /// With `input: .oneHot` the embedding size is V whatever `embeddingSize` says.
        public init(vocabularySize: Int, embeddingSize: Int = 100, hiddenSize: Int = 100, layers: Int = 1,
                    cell: CellKind = .rnn, dropout: Float = 0, input: InputEncoding = .embedding) {
            self.vocabularySize = vocabularySize
            self.embeddingSize = input == .oneHot ? vocabularySize : embeddingSize
            self.input = input
            self.hiddenSize = hiddenSize
            self.layers = layers
            self.cell = cell
            self.dropout = dropout
        }

        private enum CodingKeys: String, CodingKey {
            case vocabularySize, embeddingSize, hiddenSize, layers, cell, dropout, input
        }

        /// The largest vocabulary one-hot inputs allow (the identity table takes V² floats).
        public static let oneHotLimit = 4096

        /// Decodes a configuration; `cell`, `dropout` and `input` default to `rnn`, 0 and `embedding` (checkpoints
        /// written before they existed).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            vocabularySize = try c.decode(Int.self, forKey: .vocabularySize)
            embeddingSize = try c.decode(Int.self, forKey: .embeddingSize)
            hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
            layers = try c.decode(Int.self, forKey: .layers)
            cell = try c.decodeIfPresent(CellKind.self, forKey: .cell) ?? .rnn
            dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
            input = try c.decodeIfPresent(InputEncoding.self, forKey: .input) ?? .embedding
        }

        /// The largest vocabulary, embedding, hidden size and layer count a model may have.
        public static let limits = (vocabularySize: 10_000_000, width: 65_536, layers: 64)

        /// The name and shape of every parameter tensor, in a fixed order.
        public var parameterShapes: [(name: String, shape: [Int])] {
            let (V, D, H) = (vocabularySize, embeddingSize, hiddenSize)
            let G = cell == .lstm ? 4 * H : H  // the LSTM's four gates share one weight matrix
            var shapes: [(name: String, shape: [Int])] = input == .oneHot ? [] : [("embedding.weight", [V, D])]
            for l in 0..<layers {
                let p = "\(cell.rawValue).\(l)"
                shapes += [("\(p).wx", [l == 0 ? D : H, G]), ("\(p).wh", [H, G]), ("\(p).b", [G])]
            }
            return shapes + [("output.weight", [H, V]), ("output.bias", [V])]
        }

        /// Throws unless every size is positive and within ``limits``.
        public func validate() throws(RNNCoreError) {
            let l = Self.limits
            guard (1...l.vocabularySize).contains(vocabularySize) else {
                throw .invalidArgument("vocabulary size \(vocabularySize) outside 1...\(l.vocabularySize)")
            }
            guard (1...l.width).contains(embeddingSize), (1...l.width).contains(hiddenSize) else {
                throw .invalidArgument("embedding size \(embeddingSize) and hidden size \(hiddenSize) must lie in 1...\(l.width)")
            }
            guard (1...l.layers).contains(layers) else {
                throw .invalidArgument("layer count \(layers) outside 1...\(l.layers)")
            }
            guard input == .embedding || (embeddingSize == vocabularySize && vocabularySize <= Self.oneHotLimit) else {
                throw .invalidArgument("one-hot inputs need embedding size = vocabulary size ≤ \(Self.oneHotLimit), got V \(vocabularySize), D \(embeddingSize)")
            }
            guard dropout >= 0, dropout < 1 else {
                throw .invalidArgument("dropout \(dropout) outside [0, 1)")
            }
        }
    }

    /// The sizes of this model.
    public let configuration: Configuration
    /// The token embedding.
    public let embedding: Embedding
    /// The recurrent layers, input side first: ``RNN`` or ``LSTM`` as the configuration's `cell` says.
    public let recurrentLayers: [any RecurrentLayer]
    /// The output projection to vocabulary logits.
    public let output: Affine
    /// The loss layer.
    public let criterion = SoftmaxCrossEntropy()
    /// Draws the dropout masks during training. Part of the training state: a resumed run restores it.
    public var dropoutGenerator: Xoshiro256StarStar

    private(set) var buffers: ActivationBuffers

    /// Creates a model with the textbook's initialisation, drawn from a seeded generator: embedding N(0, 0.01²),
    /// recurrent and output weights N(0, 1/fan_in), biases zero.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for a configuration out of range, or
    ///   ``RNNCoreError/insufficientMemory(required:available:what:)`` (before allocating) when the parameters and
    ///   their gradients do not fit the memory this process can still allocate.
    public convenience init(configuration: Configuration, seed: UInt64) throws(RNNCoreError) {
        try configuration.validate()
        try configuration.requireMemoryForModel(parametersExist: false)
        var rng = Xoshiro256StarStar(seed: seed)
        func normal(_ shape: [Int], _ std: Float) -> Tensor {
            var t = Tensor(zeros: shape)
            t.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = rng.nextGaussian(mean: 0, standardDeviation: std) }
            }
            return t
        }
        // Biases start at zero; weights are drawn in parameterShapes order, so a seed fixes every value.
        var tensors: [String: Tensor] = [:]
        for (name, shape) in configuration.parameterShapes {
            let std: Float = switch name {
            case "embedding.weight": 0.01
            case _ where name.hasSuffix(".b") || name.hasSuffix(".bias"): 0
            default: 1 / Float(shape[0]).squareRoot()  // fan-in of a (in, out) weight
            }
            tensors[name] = std == 0 ? Tensor(zeros: shape) : normal(shape, std)
        }
        try self.init(configuration: configuration, tensors: tensors, dropoutSeed: seed &+ 0x5EED)
    }

    /// Creates a model from named tensors (as stored in a checkpoint); every tensor must be present with the shape
    /// the configuration implies, and no other tensor may be given.
    /// - Throws: ``RNNCoreError/insufficientMemory(required:available:what:)`` (before allocating) when the
    ///   gradients do not fit the memory left.
    public init(configuration: Configuration, tensors: [String: Tensor], dropoutSeed: UInt64 = 0) throws(RNNCoreError) {
        try configuration.validate()
        try configuration.requireMemoryForModel(parametersExist: true)
        dropoutGenerator = Xoshiro256StarStar(seed: dropoutSeed)
        let (V, D, H) = (configuration.vocabularySize, configuration.embeddingSize, configuration.hiddenSize)
        let shapes = Dictionary(uniqueKeysWithValues: configuration.parameterShapes.map { ($0.name, $0.shape) })
        var remaining = tensors
        func take(_ name: String, _ shape: [Int]) throws(RNNCoreError) -> Tensor {
            guard let t = remaining.removeValue(forKey: name) else { throw .invalidArgument("missing tensor \(name)") }
            try t.expectShape(shape, name)
            return t
        }
        if configuration.input == .oneHot {
            var identity = Tensor(zeros: [V, V])
            identity.withUnsafeMutableBufferPointer { p in for v in 0..<V { p[v * V + v] = 1 } }
            embedding = try Embedding(weight: identity, name: "embedding")
        } else {
            embedding = try Embedding(weight: take("embedding.weight", [V, D]), name: "embedding")
        }
        var layers: [any RecurrentLayer] = []
        for l in 0..<configuration.layers {
            let p = "\(configuration.cell.rawValue).\(l)"
            let (wx, wh, b) = (try take("\(p).wx", shapes["\(p).wx"]!), try take("\(p).wh", shapes["\(p).wh"]!),
                               try take("\(p).b", shapes["\(p).b"]!))
            switch configuration.cell {
            case .rnn: layers.append(try RNN(wx: wx, wh: wh, b: b, name: p))
            case .lstm: layers.append(try LSTM(wx: wx, wh: wh, b: b, name: p))
            }
        }
        recurrentLayers = layers
        output = try Affine(weight: take("output.weight", [H, V]), bias: take("output.bias", [V]), name: "output")
        if let extra = remaining.keys.sorted().first {
            throw .invalidArgument("unexpected tensor \(extra) for this configuration")
        }
        self.configuration = configuration
        buffers = ActivationBuffers(layers: configuration.layers)
    }

    /// Backpropagate each output's error through at most this many steps inside a window; 0 (the default) is the
    /// whole window (the window-per-chunk style of truncated BPTT).
    public var truncation: Int {
        get { recurrentLayers[0].truncation }
        set { recurrentLayers.forEach { $0.truncation = newValue } }
    }

    /// Every trainable parameter, in a fixed order.
    public var parameters: [Parameter] {
        (configuration.input == .oneHot ? [] : embedding.parameters) + recurrentLayers.flatMap(\.parameters)
            + output.parameters
    }

    /// The parameters by name.
    public var namedTensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.value) })
    }

    /// Forgets the hidden state of every recurrent layer.
    public func resetState() { recurrentLayers.forEach { $0.resetState() } }

    /// Logits (N, T, V) for N streams of T token ids (batch-major), advancing the hidden state.
    public func logits(for ids: [Int32], batchSize N: Int) throws(RNNCoreError) -> Tensor {
        try forwardIntoBuffers(ids, batchSize: N, training: false)
        return buffers.logits
    }

    /// The mean cross-entropy of predicting `targets` from `ids` (both N·T, batch-major), without gradients.
    /// A target equal to `ignoreIndex` does not count.
    public func loss(ids: [Int32], targets: [Int32], batchSize N: Int,
                     ignoreIndex: Int32? = nil) throws(RNNCoreError) -> (loss: Double, count: Int) {
        guard targets.count == ids.count else { throw .shapeMismatch("\(ids.count) ids but \(targets.count) targets") }
        try forwardIntoBuffers(ids, batchSize: N, training: false)
        criterion.ignoreIndex = ignoreIndex
        return try criterion.loss(buffers.logits, targets: targets)
    }

    /// Forward and backward over one window: returns the mean loss and ADDS its gradient to every parameter's
    /// gradient (zero them first with `parameters.zeroGradients()`). Gradients stop at the window's start.
    ///
    /// Activations and their gradients live in buffers the model keeps, so that after the first window of a given
    /// shape a training step allocates no tensor memory.
    public func lossAndGradients(ids: [Int32], targets: [Int32], batchSize N: Int,
                                 ignoreIndex: Int32? = nil) throws(RNNCoreError) -> (loss: Double, count: Int) {
        let (loss, count, _) = try step(ids: ids, targets: targets, batchSize: N, ignoreIndex: ignoreIndex,
                                        countCorrect: false)
        return (loss, count)
    }

    /// ``lossAndGradients(ids:targets:batchSize:ignoreIndex:)``, also setting `correct` to how many counted targets
    /// were the most likely token (ties go to the smaller id), measured on the logits before the gradient
    /// overwrites them.
    public func lossAndGradients(ids: [Int32], targets: [Int32], batchSize N: Int, ignoreIndex: Int32? = nil,
                                 correct: inout Int) throws(RNNCoreError) -> (loss: Double, count: Int) {
        let (loss, count, right) = try step(ids: ids, targets: targets, batchSize: N, ignoreIndex: ignoreIndex,
                                            countCorrect: true)
        correct = right
        return (loss, count)
    }

    /// Forward, loss, optional accuracy count, backward.
    private func step(ids: [Int32], targets: [Int32], batchSize N: Int, ignoreIndex: Int32?,
                      countCorrect: Bool) throws(RNNCoreError) -> (loss: Double, count: Int, correct: Int) {
        guard targets.count == ids.count else { throw .shapeMismatch("\(ids.count) ids but \(targets.count) targets") }
        try forwardIntoBuffers(ids, batchSize: N, training: true)
        defer { releaseCaches() }
        let correct = countCorrect ? Self.countCorrect(buffers.logits, targets: targets, ignoreIndex: ignoreIndex) : 0
        criterion.ignoreIndex = ignoreIndex
        let result = try criterion.lossAndGradient(&buffers.logits, targets: targets)
        let L = recurrentLayers.count
        let dLogits = buffers.logits
        try output.backward(dLogits, into: &buffers.hiddenGradients[L - 1])
        if buffers.dropoutActive { Self.multiply(&buffers.hiddenGradients[L - 1], by: buffers.masks[L]) }
        for l in stride(from: L - 1, through: 0, by: -1) {
            let dOutput = buffers.hiddenGradients[l]
            if l > 0 {
                try recurrentLayers[l].backward(dOutput, into: &buffers.hiddenGradients[l - 1])
                if buffers.dropoutActive { Self.multiply(&buffers.hiddenGradients[l - 1], by: buffers.masks[l]) }
            } else {
                try recurrentLayers[0].backward(dOutput, into: &buffers.embeddedGradient)
                if buffers.dropoutActive { Self.multiply(&buffers.embeddedGradient, by: buffers.masks[0]) }
            }
        }
        if configuration.input == .embedding { try embedding.backward(buffers.embeddedGradient) }
        return (result.loss, result.count, correct)
    }

    /// How many rows of `logits` have their largest entry at the target (ignored targets do not count).
    static func countCorrect(_ logits: Tensor, targets: [Int32], ignoreIndex: Int32?) -> Int {
        let V = logits.shape.last ?? 1
        return logits.withUnsafeBufferPointer { z in
            var correct = 0
            for (m, target) in targets.enumerated() where target != ignoreIndex {
                let row = z[(m * V)..<((m + 1) * V)]
                var best = row.startIndex
                for i in row.indices where row[i] > row[best] { best = i }
                if best - m * V == Int(target) { correct += 1 }
            }
            return correct
        }
    }

    /// Runs embedding → recurrent layers → output into the activation buffers; with `training` and a positive
    /// dropout, the input of every layer after the embedding goes through a fresh dropout mask.
    private func forwardIntoBuffers(_ ids: [Int32], batchSize N: Int, training: Bool) throws(RNNCoreError) {
        guard N > 0, !ids.isEmpty, ids.count % N == 0 else {
            throw .shapeMismatch("\(ids.count) ids do not form \(N) equal streams")
        }
        releaseCaches()  // the layers' references to last window's buffers would force copies
        buffers.dropoutActive = training && configuration.dropout > 0
        try embedding.forward(ids, batchSize: N, into: &buffers.embedded)
        var input = buffers.embedded
        for (l, layer) in recurrentLayers.enumerated() {
            if buffers.dropoutActive { input = dropout(input, site: l) }
            try layer.forward(input, into: &buffers.hidden[l])
            input = buffers.hidden[l]
        }
        let L = recurrentLayers.count
        if buffers.dropoutActive { input = dropout(input, site: L) }
        try output.forward(input, into: &buffers.logits)
    }

    /// Draws a fresh inverted-dropout mask for `site` (0: embedding output, l: output of layer l-1, L: input of
    /// the output layer) and returns `x ⊙ mask` in that site's buffer.
    private func dropout(_ x: Tensor, site: Int) -> Tensor {
        let p = configuration.dropout
        let keep = 1 - p, scale = 1 / keep
        // A value is kept when its 24-bit uniform u satisfies u < keep·2²⁴ (exact for every float p).
        let threshold = UInt32((Double(keep) * 16_777_216).rounded(.down))
        buffers.masks[site].prepare(like: x)
        buffers.dropped[site].prepare(like: x)
        let count = x.count
        let m = buffers.masks[site].writePointer(), y = buffers.dropped[site].writePointer(), v = x.readPointer
        var k = 0
        while k < count {
            let bits = dropoutGenerator.next()
            for half in 0..<2 where k < count {
                let u = UInt32(truncatingIfNeeded: bits >> (half == 0 ? 40 : 8)) & 0xFF_FFFF
                let mk: Float = u < threshold ? scale : 0
                m[k] = mk
                y[k] = v[k] * mk
                k += 1
            }
        }
        return buffers.dropped[site]
    }

    /// x ⊙= mask, element-wise (same shapes).
    private static func multiply(_ x: inout Tensor, by mask: Tensor) {
        let n = x.count, p = x.writePointer(), m = mask.readPointer
        for k in 0..<n { p[k] *= m[k] }
    }

    /// Drops every layer's references to the activation buffers.
    private func releaseCaches() {
        embedding.releaseCache()
        recurrentLayers.forEach { $0.releaseCache() }
        output.releaseCache()
    }
}

/// The activations of one window and their gradients, kept between windows and reused in place.
struct ActivationBuffers {
    var embedded = Tensor(zeros: [0])
    var hidden: [Tensor]
    var logits = Tensor(zeros: [0])
    var hiddenGradients: [Tensor]
    var embeddedGradient = Tensor(zeros: [0])
    /// Dropout masks and masked activations per site (0: embedding output, l: output of layer l-1, L: top).
    var masks: [Tensor]
    var dropped: [Tensor]
    /// Whether the window in the buffers was run with dropout (then backward applies the masks).
    var dropoutActive = false

    init(layers: Int) {
        hidden = Array(repeating: Tensor(zeros: [0]), count: layers)
        hiddenGradients = hidden
        masks = Array(repeating: Tensor(zeros: [0]), count: layers + 1)
        dropped = masks
    }
}
