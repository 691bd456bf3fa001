import CRNNCore

/// The adaptive softmax (Grave et al. 2017; PyTorch's `AdaptiveLogSoftmaxWithLoss`): exact, normalised word
/// probabilities at a fraction of the full softmax's cost when word ids are ordered by frequency.
///
/// The head is an affine layer H → `cutoffs[0]` + C over the most frequent words plus one entry per tail cluster;
/// tail cluster i holds the words `cutoffs[i]..<cutoffs[i+1]` (the last ending at V) behind a projection
/// H → P_i and an output P_i → S_i, neither with a bias. A training row costs the head plus only the cluster of
/// its target. Forward, loss and gradient are one fused C call (`rnncore_adaptive_softmax_cross_entropy`).
///
/// Weights are stored (in, out) like every affine weight here; PyTorch's are (out, in) (see
/// ``RNNLanguageModel/pytorchStateDict(prefix:)``).
public final class AdaptiveSoftmax: OutputLayer {
    /// The (H, cutoffs[0] + C) head weight.
    public let headWeight: Parameter
    /// The (cutoffs[0] + C) head bias.
    public let headBias: Parameter
    /// The (H, P_i) projection of each tail cluster.
    public let tailProjections: [Parameter]
    /// The (P_i, S_i) output weight of each tail cluster.
    public let tailWeights: [Parameter]
    /// The cluster boundaries below V, increasing.
    public let cutoffs: [Int]
    public let vocabularySize: Int
    public var inputSize: Int { headWeight.shape[0] }

    private let bounds: [Int64]        // cutoffs + [V]
    private let projectionSizes: [Int64]
    private var workspace = Tensor(zeros: [0])
    private var scoreBuffer = Tensor(zeros: [0])

    /// Creates the layer from its tensors, named `name.head.weight`, `name.head.bias`, `name.tail.i.projection`
    /// and `name.tail.i.weight`.
    public init(cutoffs: [Int], vocabularySize V: Int, headWeight: Tensor, headBias: Tensor, tailProjections: [Tensor],
                tailWeights: [Tensor], name: String = "output") throws(RNNCoreError) {
        let C = cutoffs.count
        guard C >= 1, cutoffs[0] > 0, zip(cutoffs, cutoffs.dropFirst()).allSatisfy({ $0 < $1 }), cutoffs[C - 1] < V else {
            throw .invalidArgument("adaptive softmax cutoffs \(cutoffs) must increase strictly from above 0 to below V \(V)")
        }
        guard headWeight.shape.count == 2, tailProjections.count == C, tailWeights.count == C else {
            throw .shapeMismatch("adaptive softmax needs a 2-D head weight and \(C) tail projections and weights")
        }
        let H = headWeight.shape[0]
        try headWeight.expectShape([H, cutoffs[0] + C], "\(name).head.weight")
        try headBias.expectShape([cutoffs[0] + C], "\(name).head.bias")
        let ends = cutoffs + [V]
        for i in 0..<C {
            guard tailProjections[i].shape.count == 2, tailProjections[i].shape[1] > 0 else {
                throw .shapeMismatch("\(name).tail.\(i).projection has shape \(tailProjections[i].shape), expected (\(H), P)")
            }
            let P = tailProjections[i].shape[1]
            try tailProjections[i].expectShape([H, P], "\(name).tail.\(i).projection")
            try tailWeights[i].expectShape([P, ends[i + 1] - ends[i]], "\(name).tail.\(i).weight")
        }
        self.cutoffs = cutoffs
        vocabularySize = V
        self.headWeight = Parameter(name: "\(name).head.weight", value: headWeight)
        self.headBias = Parameter(name: "\(name).head.bias", value: headBias)
        self.tailProjections = tailProjections.enumerated().map { Parameter(name: "\(name).tail.\($0.offset).projection", value: $0.element) }
        self.tailWeights = tailWeights.enumerated().map { Parameter(name: "\(name).tail.\($0.offset).weight", value: $0.element) }
        bounds = ends.map(Int64.init)
        projectionSizes = tailProjections.map { Int64($0.shape[1]) }
    }

    /// Head weight, head bias, then each cluster's projection and weight.
    public var parameters: [Parameter] {
        [headWeight, headBias] + zip(tailProjections, tailWeights).flatMap { [$0, $1] }
    }

    public func loss(_ x: Tensor, targets: [Int32], ignoreIndex: Int32?) throws(RNNCoreError) -> (loss: Double, count: Int) {
        let M = try checkRows(x, targets: targets)
        var unused = Tensor(zeros: [0])
        let (loss, count) = try crossEntropy(x, targets: targets, rows: M, ignoreIndex: ignoreIndex, gradients: false,
                                             inputGradient: &unused)
        return (loss, count)
    }

    public func lossAndGradient(_ x: Tensor, targets: [Int32], ignoreIndex: Int32?, countCorrect: Bool,
                                inputGradient: inout Tensor) throws(RNNCoreError) -> (loss: Double, count: Int, correct: Int) {
        let M = try checkRows(x, targets: targets)
        var correct = 0
        if countCorrect {  // the most likely word needs every word's probability: the whole log_prob pass
            try scores(x, into: &scoreBuffer)
            correct = Self.countCorrect(scoreBuffer, targets: targets, ignoreIndex: ignoreIndex)
        }
        inputGradient.prepare(like: x)
        let (loss, count) = try crossEntropy(x, targets: targets, rows: M, ignoreIndex: ignoreIndex, gradients: true,
                                             inputGradient: &inputGradient)
        return (loss, count, correct)
    }

    public func scores(_ x: Tensor, into scores: inout Tensor) throws(RNNCoreError) {
        guard x.shape.last == inputSize, x.count > 0 else {
            throw .shapeMismatch("adaptive softmax input has shape \(x.shape), expected (…, \(inputSize))")
        }
        let M = x.count / inputSize
        scores.prepare(like: x, last: vocabularySize)
        let out = scores.writePointer()
        try withShapeAndWeights(rows: M) { shape, weights, work, workCount throws(RNNCoreError) in
            try check(rnncore_adaptive_softmax_log_prob(out, x.readPointer, Int64(M), shape, weights, work, workCount),
                      "adaptive softmax log-probabilities")
        }
        withExtendedLifetime(x) {}
    }

    public func releaseCache() {}

    /// `head.weight` (K, H), `head.bias` (K), `tail.i.0.weight` (P_i, H), `tail.i.1.weight` (S_i, P_i): an
    /// `nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value, head_bias=True)`.
    public func pyTorchStateDict(prefix: String) -> [String: Tensor] {
        var dict = [prefix + "head.weight": headWeight.value.matrixTranspose(), prefix + "head.bias": headBias.value]
        for i in cutoffs.indices {
            dict[prefix + "tail.\(i).0.weight"] = tailProjections[i].value.matrixTranspose()
            dict[prefix + "tail.\(i).1.weight"] = tailWeights[i].value.matrixTranspose()
        }
        return dict
    }

    /// Reads the tensors of an `nn.AdaptiveLogSoftmaxWithLoss` under `prefix` in `tensors` (a missing
    /// `head.bias`, PyTorch's default `head_bias=False`, reads as zeros), inferring the cutoffs from the shapes and
    /// `div_value` from the first projection. `namePrefix` is put before names in errors.
    /// - Returns: the cutoffs, the div value and the tensors under this library's `output.` names.
    static func parsePyTorchStateDict(_ tensors: [String: Tensor], prefix: String, namePrefix: String,
                                      vocabularySize V: Int, inputSize H: Int)
        throws(PyTorchImportError) -> (cutoffs: [Int], divValue: Float, tensors: [String: Tensor]) {
        func get(_ name: String) throws(PyTorchImportError) -> Tensor {
            guard let t = tensors[prefix + name] else { throw .missingTensor(name: namePrefix + prefix + name) }
            guard t.shape.count == 2, t.shape.allSatisfy({ $0 > 0 }) else {
                throw .unsupported("\(namePrefix)\(prefix)\(name) has shape \(t.shape), not a non-empty matrix")
            }
            return t
        }
        var C = 0
        while tensors[prefix + "tail.\(C).0.weight"] != nil { C += 1 }
        guard C > 0 else { throw .missingTensor(name: namePrefix + prefix + "tail.0.0.weight") }
        let head = try get("head.weight")
        guard head.shape[1] == H, head.shape[0] > C else {
            throw .shapeMismatch(name: namePrefix + prefix + "head.weight", expected: [head.shape[0], H], actual: head.shape)
        }
        var ours: [String: Tensor] = ["output.head.weight": head.matrixTranspose()]
        let K = head.shape[0]
        if let bias = tensors[prefix + "head.bias"] {
            guard bias.shape == [K] else { throw .shapeMismatch(name: namePrefix + prefix + "head.bias", expected: [K], actual: bias.shape) }
            ours["output.head.bias"] = bias
        } else {
            ours["output.head.bias"] = Tensor(zeros: [K])
        }
        var cutoffs = [K - C]
        var projections: [Int] = []
        for i in 0..<C {
            let projection = try get("tail.\(i).0.weight"), weight = try get("tail.\(i).1.weight")
            let P = projection.shape[0]
            guard projection.shape[1] == H else {
                throw .shapeMismatch(name: namePrefix + prefix + "tail.\(i).0.weight", expected: [P, H], actual: projection.shape)
            }
            guard weight.shape[1] == P else {
                throw .shapeMismatch(name: namePrefix + prefix + "tail.\(i).1.weight", expected: [weight.shape[0], P], actual: weight.shape)
            }
            projections.append(P)
            cutoffs.append(cutoffs[i] + weight.shape[0])
            ours["output.tail.\(i).projection"] = projection.matrixTranspose()
            ours["output.tail.\(i).weight"] = weight.matrixTranspose()
        }
        let covered = cutoffs.removeLast()
        guard covered == V else {
            throw .unsupported("the adaptive softmax under \(namePrefix)\(prefix) covers \(covered) words, but the encoder has \(V)")
        }
        let known = Set(["head.weight", "head.bias"] + (0..<C).flatMap { ["tail.\($0).0.weight", "tail.\($0).1.weight"] })
        if let extra = tensors.keys.filter({ $0.hasPrefix(prefix) && !known.contains(String($0.dropFirst(prefix.count))) })
            .sorted().first {
            throw .unexpectedTensor(name: namePrefix + extra)
        }
        // div_value from the first projection; every projection must then be PyTorch's ⌊H / div^(i+1)⌋.
        let divValue = Float(H) / Float(projections[0])
        let check = RNNLanguageModel.Configuration(vocabularySize: V, embeddingSize: H, hiddenSize: H, softmax: .adaptive,
                                                   cutoffs: cutoffs, divValue: divValue)
        guard check.tailProjectionSizes == projections else {
            throw .unsupported("\(namePrefix)\(prefix)tail projections \(projections) do not follow one div_value (⌊\(H) / div^(i+1)⌋)")
        }
        return (cutoffs, divValue, ours)
    }

    /// The one fused C call behind both loss entry points.
    private func crossEntropy(_ x: Tensor, targets: [Int32], rows M: Int, ignoreIndex: Int32?, gradients: Bool,
                              inputGradient: inout Tensor) throws(RNNCoreError) -> (Double, Int) {
        var loss = 0.0
        var counted: Int64 = 0
        let dx: UnsafeMutablePointer<Float>? = gradients ? inputGradient.writePointer() : nil
        let gradientPointers = gradients ? (parameters.map { $0.gradient.writePointer() }) : []
        try withShapeAndWeights(rows: M) { shape, weights, work, workCount throws(RNNCoreError) in
            let status: rnncore_status
            if gradients {
                let C = cutoffs.count
                let projections = (0..<C).map { Optional(gradientPointers[2 + 2 * $0]) }
                let outputs = (0..<C).map { Optional(gradientPointers[3 + 2 * $0]) }
                status = projections.withUnsafeBufferPointer { pp in
                    outputs.withUnsafeBufferPointer { op in
                        var grads = rnncore_adaptive_gradients(head_weight: gradientPointers[0],
                                                               head_bias: gradientPointers[1],
                                                               tail_projection: pp.baseAddress,
                                                               tail_output: op.baseAddress)
                        return targets.withUnsafeBufferPointer { tp in
                            rnncore_adaptive_softmax_cross_entropy(&loss, &counted, dx, &grads, x.readPointer,
                                                                   tp.baseAddress, Int64(M), shape, weights,
                                                                   ignoreIndex ?? noIgnoreIndex, 1, work, workCount)
                        }
                    }
                }
            } else {
                status = targets.withUnsafeBufferPointer { tp in
                    rnncore_adaptive_softmax_cross_entropy(&loss, &counted, nil, nil, x.readPointer, tp.baseAddress,
                                                           Int64(M), shape, weights, ignoreIndex ?? noIgnoreIndex, 1,
                                                           work, workCount)
                }
            }
            try check(status, "adaptive softmax cross-entropy")
        }
        withExtendedLifetime((x, parameters)) {}
        return (loss, Int(counted))
    }

    /// The C workspace query (`rnncore_adaptive_softmax_workspace`) for `rows` rows of an adaptive softmax with
    /// input size H, cluster bounds `cutoffs + [V]` and tail projection sizes: its status and the floats it asks for.
    static func workspaceQuery(inputSize H: Int, bounds: [Int64], projectionSizes: [Int64],
                               rows M: Int) -> (status: rnncore_status, floats: Int64) {
        var floats: Int64 = 0
        let status = bounds.withUnsafeBufferPointer { bp in
            projectionSizes.withUnsafeBufferPointer { sp in
                var shape = rnncore_adaptive_softmax(H: Int64(H), clusters: Int64(projectionSizes.count),
                                                     cutoffs: bp.baseAddress, projections: sp.baseAddress)
                return rnncore_adaptive_softmax_workspace(&floats, &shape, Int64(M))
            }
        }
        return (status, floats)
    }

    /// Calls `body` with the C shape and weight descriptions and a workspace sized for `rows` rows.
    private func withShapeAndWeights(rows M: Int, _ body: (UnsafePointer<rnncore_adaptive_softmax>,
                                                           UnsafePointer<rnncore_adaptive_weights>,
                                                           UnsafeMutablePointer<Float>, Int64) throws(RNNCoreError) -> Void)
        throws(RNNCoreError) {
        let C = cutoffs.count
        let query = Self.workspaceQuery(inputSize: inputSize, bounds: bounds, projectionSizes: projectionSizes, rows: M)
        try check(query.status, "adaptive softmax workspace size")
        if workspace.count < Int(query.floats) { workspace = Tensor(zeros: [Int(query.floats)]) }
        let projections = tailProjections.map { Optional($0.value.readPointer) }
        let outputs = tailWeights.map { Optional($0.value.readPointer) }
        var result: RNNCoreError?
        bounds.withUnsafeBufferPointer { bp in
            projectionSizes.withUnsafeBufferPointer { sp in
                projections.withUnsafeBufferPointer { pp in
                    outputs.withUnsafeBufferPointer { op in
                        var shape = rnncore_adaptive_softmax(H: Int64(inputSize), clusters: Int64(C),
                                                             cutoffs: bp.baseAddress, projections: sp.baseAddress)
                        var weights = rnncore_adaptive_weights(head_weight: headWeight.value.readPointer,
                                                               head_bias: headBias.value.readPointer,
                                                               tail_projection: pp.baseAddress,
                                                               tail_output: op.baseAddress)
                        do throws(RNNCoreError) {
                            try body(&shape, &weights, workspace.writePointer(), Int64(workspace.count))
                        } catch { result = error }
                    }
                }
            }
        }
        withExtendedLifetime((tailProjections, tailWeights, headWeight, headBias)) {}
        if let result { throw result }
    }
}
