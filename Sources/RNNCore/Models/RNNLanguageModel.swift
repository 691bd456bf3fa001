/// An RNN language model: embedding (or one-hot inputs) → ``RecurrentNetwork`` (L stacked layers of any cell)
/// → output layer (``SoftmaxOutput``: affine → softmax cross-entropy, optionally tied to the embedding; or
/// ``AdaptiveSoftmax``).
///
/// The textbook's SimpleRnnlm, generalised to several layers, every cell of the cell table (``CellKind``), and
/// dropout on every non-recurrent connection (embedding output, between layers, before the output layer;
/// training only), as in Zaremba et al.'s regularised LSTM language models. The stack is an ordinary stateful
/// ``RecurrentNetwork``; the model adds only its input and output layers and the two dropouts around the stack.
/// Inputs are token ids in batch-major order: N streams of T consecutive tokens, `ids[n*T + t]`. The stack carries
/// its state, so consecutive windows of the same streams continue each other; call ``resetState()`` between
/// unrelated texts.
public final class RNNLanguageModel {
    /// The sizes of this model.
    public let configuration: Configuration
    /// The token embedding.
    public let embedding: Embedding
    /// The recurrent stack: ``Configuration/layers`` layers of ``Configuration/cell``, stateful, with the model's
    /// dropout between layers.
    public let network: RecurrentNetwork
    /// The output layer: word probabilities and the loss (``Configuration/softmax`` says which).
    public let output: any OutputLayer

    /// Draws the dropout masks during training (the stack's generator, shared by the model's two dropouts). Part
    /// of the training state: a resumed run restores it.
    public var dropoutGenerator: Xoshiro256StarStar {
        get { network.dropoutGenerator }
        set { network.dropoutGenerator = newValue }
    }

    /// In data-parallel training, which streams of the whole batch a window holds (dropout then draws the masks one
    /// process would); nil for the whole batch.
    var dropoutShard: DropoutShard? {
        get { network.dropoutShard }
        set { network.dropoutShard = newValue }
    }

    // Buffers reused from window to window (storage kept when the shape repeats).
    private var embedded = Tensor(zeros: [0])
    private var logits = Tensor(zeros: [0])             // scores for ``logits(for:batchSize:)``
    private var topGradient = Tensor(zeros: [0])      // ∂L/∂(the stack's outputs)
    private var inputDropout = DropoutSite()           // on the embedding output
    private var outputDropout = DropoutSite()          // on the stack's outputs, before the output layer
    private var droppedInLastWindow = false

    /// Creates a model with the textbook's initialisation, drawn from a seeded generator: embedding N(0, 0.01²),
    /// recurrent and output weights N(0, 1/fan_in), biases zero. A tied embedding, being the output weight too, is
    /// drawn N(0, 1/H).
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
            case "embedding.weight": configuration.tiedWeights ? 1 / Float(shape[1]).squareRoot() : 0.01
            case _ where shape.count == 1: 0  // every bias
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
        let (V, D, H) = (configuration.vocabularySize, configuration.embeddingSize, configuration.hiddenSize)
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
        let spec = configuration.cell.specification
        var weights: [RecurrentNetwork.Weights] = []
        for l in 0..<configuration.layers {
            var byRole: [CellSpecification.Role: Tensor] = [:]
            for (p, (name, shape)) in zip(spec.parameters, spec.parameterShapes(
                prefix: "\(configuration.cell.rawValue).\(l)", inputSize: l == 0 ? D : H, hiddenSize: H)) {
                byRole[p.role] = try take(name, shape)
            }
            weights.append(RecurrentNetwork.Weights(wx: byRole[.inputWeight]!, wh: byRole[.hiddenWeight]!,
                                                    b: byRole[.bias]!, hiddenBias: byRole[.hiddenBias]))
        }
        network = try RecurrentNetwork(cell: configuration.cell, bidirectional: false, weights: weights,
                                       dropout: configuration.dropout, dropoutSeed: dropoutSeed)
        network.isStateful = true
        switch configuration.softmax {
        case .full:
            let bias = try take("output.bias", [V])
            output = SoftmaxOutput(affine: configuration.tiedWeights
                ? try Affine(transposedWeight: embedding.weight, bias: bias, name: "output")
                : try Affine(weight: take("output.weight", [H, V]), bias: bias, name: "output"))
        case .adaptive:
            let shapes = configuration.outputParameterShapes
            var tensors: [String: Tensor] = [:]
            for (name, shape) in shapes { tensors[name] = try take(name, shape) }
            let C = configuration.cutoffs.count
            output = try AdaptiveSoftmax(cutoffs: configuration.cutoffs, vocabularySize: V,
                                         headWeight: tensors["output.head.weight"]!,
                                         headBias: tensors["output.head.bias"]!,
                                         tailProjections: (0..<C).map { tensors["output.tail.\($0).projection"]! },
                                         tailWeights: (0..<C).map { tensors["output.tail.\($0).weight"]! })
        }
        if let extra = remaining.keys.sorted().first {
            throw .invalidArgument("unexpected tensor \(extra) for this configuration")
        }
        self.configuration = configuration
    }

    /// Backpropagate each output's error through at most this many steps inside a window; 0 (the default) is the
    /// whole window (the window-per-chunk style of truncated BPTT).
    public var truncation: Int {
        get { network.truncation }
        set { network.truncation = newValue }
    }

    /// Every trainable parameter, in a fixed order.
    public var parameters: [Parameter] {
        (configuration.input == .oneHot ? [] : embedding.parameters) + network.parameters + output.parameters
    }

    /// The parameters by name.
    public var namedTensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.value) })
    }

    /// Forgets the hidden state of every recurrent layer.
    public func resetState() { network.resetState() }

    /// Scores (N, T, V) for N streams of T token ids (batch-major), advancing the hidden state: their softmax is
    /// the model's next-word distribution (logits of the full softmax, log-probabilities of the adaptive one).
    public func logits(for ids: [Int32], batchSize N: Int) throws(RNNCoreError) -> Tensor {
        let top = try forwardIntoBuffers(ids, batchSize: N, training: false)
        try output.scores(top, into: &logits)
        return logits
    }

    /// The mean cross-entropy of predicting `targets` from `ids` (both N·T, batch-major), without gradients.
    /// A target equal to `ignoreIndex` does not count.
    public func loss(ids: [Int32], targets: [Int32], batchSize N: Int,
                     ignoreIndex: Int32? = nil) throws(RNNCoreError) -> (loss: Double, count: Int) {
        guard targets.count == ids.count else { throw .shapeMismatch("\(ids.count) ids but \(targets.count) targets") }
        let top = try forwardIntoBuffers(ids, batchSize: N, training: false)
        return try output.loss(top, targets: targets, ignoreIndex: ignoreIndex)
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
        let top = try forwardIntoBuffers(ids, batchSize: N, training: true)
        defer { releaseCaches() }
        let result = try output.lossAndGradient(top, targets: targets, ignoreIndex: ignoreIndex,
                                                countCorrect: countCorrect, inputGradient: &topGradient)
        if droppedInLastWindow { outputDropout.backward(&topGradient) }
        var dEmbedded = try network.backpropagate(topGradient, finalStateGradient: nil)
        if droppedInLastWindow { inputDropout.backward(&dEmbedded) }
        if configuration.input == .embedding { try embedding.backward(dEmbedded) }
        return result
    }

    /// Runs embedding → stack into the buffers and returns the output layer's input; with `training` and a
    /// positive dropout, the embedding output, the input of every later layer and the stack's output each go
    /// through a fresh dropout mask, drawn in that order.
    private func forwardIntoBuffers(_ ids: [Int32], batchSize N: Int, training: Bool) throws(RNNCoreError) -> Tensor {
        guard N > 0, !ids.isEmpty, ids.count % N == 0 else {
            throw .shapeMismatch("\(ids.count) ids do not form \(N) equal streams")
        }
        releaseCaches()  // the layers' references to last window's buffers would force copies
        let p = configuration.dropout
        droppedInLastWindow = training && p > 0
        try embedding.forward(ids, batchSize: N, into: &embedded)
        var input = embedded
        if droppedInLastWindow { input = inputDropout.apply(input, probability: p, generator: &network.dropoutGenerator,
                                                                      shard: dropoutShard) }
        var top = try network.run(input, initialState: nil, training: training)
        if droppedInLastWindow { top = outputDropout.apply(top, probability: p, generator: &network.dropoutGenerator,
                                                                    shard: dropoutShard) }
        return top
    }

    /// The activation buffers of the model and its stack (not the layers' states and workspaces), for tests that
    /// check reuse.
    var buffers: [Tensor] {
        [embedded, logits, topGradient, inputDropout.mask, inputDropout.output, outputDropout.mask,
         outputDropout.output] + outputBuffers + network.buffers
    }

    /// The floats of every buffer the model, its stack and its layers keep between windows.
    var bufferScalarCount: Int { [embedded, logits, topGradient, inputDropout.mask, inputDropout.output,
                                  outputDropout.mask, outputDropout.output].reduce(network.bufferScalarCount) { $0 + $1.count }
                               + outputBuffers.reduce(0) { $0 + $1.count } }

    private var outputBuffers: [Tensor] { (output as? SoftmaxOutput)?.buffers ?? [] }

    /// Drops every layer's references to the activation buffers.
    private func releaseCaches() {
        embedding.releaseCache()
        network.releaseCache()
        output.releaseCache()
    }
}
