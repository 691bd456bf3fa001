// Dynamic evaluation (Mikolov's RNNLM `-dynamic`; Krause et al. 2018, "Dynamic evaluation of neural sequence
// models"): the model keeps learning from the test text while it scores it, each window scored before the model
// learns from it.

import Foundation

/// How ``RNNLanguageModel/dynamicEvaluation(on:options:)`` reads and adapts: the batching of the ordinary
/// evaluation and the plain SGD step taken after each window.
public struct DynamicEvaluationOptions: Sendable, Equatable {
    /// The SGD learning rate of the step after each window (`p -= rate · g`); 0 scores exactly as the ordinary
    /// evaluation does. Must be finite and not negative.
    public var learningRate: Float
    /// Clip each window's gradient to this global L2 norm before its step; nil or 0 for no clipping. Must be
    /// finite and not negative.
    public var clipNorm: Double?
    /// N, the number of streams the text is cut into (1: the text in order, Mikolov's setting).
    public var batchSize: Int
    /// T, the steps of one window: the model adapts once per window.
    public var bptt: Int

    /// The learning rate used when none is given. Measured on the Penn Treebank test text with a small tanh RNN
    /// (D = H = 100, one epoch of the training defaults, static perplexity 182.5), batch 1, T 35, clip 0.25:
    /// dynamic perplexity 173.7 at rate 0.01, 170.6 at 0.03, 166.9 at 0.1, 164.1 at 0.3, 165.8 at 1. Every one of
    /// those windows' gradients was longer than 0.25, so with the default clip each step has length rate · 0.25.
    public static let defaultLearningRate: Float = 0.3
    /// The clip norm used when none is given: the training default (``TrainingOptions/clipNorm``), so one
    /// unusual window cannot take a step far larger than training ever took.
    public static let defaultClipNorm: Double = 0.25

    /// Creates options; the defaults are ``defaultLearningRate``, ``defaultClipNorm``, batch 1 and T 35 (those of
    /// ``RNNLanguageModel/perplexity(on:batchSize:bptt:communicator:)``).
    public init(learningRate: Float = Self.defaultLearningRate, clipNorm: Double? = Self.defaultClipNorm,
                batchSize: Int = 1, bptt: Int = 35) {
        self.learningRate = learningRate
        self.clipNorm = clipNorm
        self.batchSize = batchSize
        self.bptt = bptt
    }

    /// Throws unless every option is in range.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` naming the option and its value.
    public func validate() throws(RNNCoreError) {
        guard learningRate.isFinite, learningRate >= 0 else {
            throw .invalidArgument("the dynamic-evaluation learning rate must be a finite number, 0 or positive, got \(learningRate)")
        }
        if let clipNorm, !(clipNorm.isFinite && clipNorm >= 0) {
            throw .invalidArgument("the dynamic-evaluation clip norm must be a finite number, 0 (no clipping) or positive, got \(clipNorm)")
        }
        guard batchSize >= 1, bptt >= 1 else {
            throw .invalidArgument("batch size (\(batchSize)) and bptt (\(bptt)) must be at least 1")
        }
    }
}

/// What ``RNNLanguageModel/dynamicEvaluation(on:options:)`` measured: the ordinary (static) and the dynamic
/// perplexity of the same text with the same batching.
public struct DynamicEvaluationResult: Sendable, Equatable {
    /// The mean cross-entropy (nats per token) of the unchanged model: the ordinary evaluation,
    /// ``RNNLanguageModel/meanLoss(on:batchSize:bptt:communicator:)``.
    public var staticLoss: Double
    /// The mean cross-entropy while adapting, each window scored before the step it causes; NaN when the
    /// adaptation diverged (``divergedAfter``).
    public var dynamicLoss: Double
    /// The number of predictions each mean is over (the text's tokens minus one).
    public var count: Int
    /// The options the evaluation ran with (the learning rate and the clip norm used).
    public var options: DynamicEvaluationOptions
    /// The number of SGD steps taken: one per window but the last (nothing is scored after it).
    public var updates: Int
    /// How many of the steps clipping scaled down.
    public var clippedUpdates: Int
    /// When the loss or the gradient became NaN or infinite: how many predictions had been scored before; nil
    /// when the evaluation finished.
    public var divergedAfter: Int?

    /// exp of ``staticLoss``.
    public var staticPerplexity: Double { exp(staticLoss) }
    /// exp of ``dynamicLoss``: a dynamic-evaluation number, to be reported as such.
    public var dynamicPerplexity: Double { exp(dynamicLoss) }
}

extension RNNLanguageModel {
    /// Dynamic evaluation: the perplexity of a text while a copy of the model keeps learning from the text it has
    /// already scored, next to the ordinary (static) perplexity.
    ///
    /// The text is cut into streams and windows exactly as ``meanLoss(on:batchSize:bptt:communicator:)`` does
    /// (`options.batchSize` streams from a zero state, windows of `options.bptt` steps, the hidden state carried).
    /// Each window is first scored — its loss counts, computed before anything is learnt from it — and then the
    /// copy takes one plain SGD step on that window's gradient (`p -= rate · g`, the gradient clipped to
    /// `options.clipNorm`), before the next window is read. The hidden state carried to the next window is the
    /// one the scoring pass left, so with a learning rate of 0 the dynamic loss is bit for bit the static one.
    ///
    /// The model this is called on does not change: its parameters, hidden state and dropout generator are as
    /// they were. The adapting copy is built from ``configuration`` (with dropout 0: dynamic evaluation takes
    /// its gradients without dropout) and ``namedTensors``; it needs as much memory again as the model.
    ///
    /// Perplexities measured this way are not comparable with static ones: report them as dynamic evaluation.
    /// - Parameters:
    ///   - ids: the token ids of the text; at least 2.
    ///   - options: the batching, the learning rate and the clipping.
    /// - Returns: both losses, the number of predictions and what the adaptation did. A diverging adaptation
    ///   (NaN or infinite loss or gradient) stops there: ``DynamicEvaluationResult/dynamicLoss`` is NaN and
    ///   ``DynamicEvaluationResult/divergedAfter`` says where.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for options out of range (``DynamicEvaluationOptions/validate()``)
    ///   or fewer than 2 tokens; ``RNNCoreError/insufficientMemory(required:available:what:)`` when the copy does
    ///   not fit; the ordinary evaluation's errors (a token outside the vocabulary).
    public func dynamicEvaluation(on ids: [Int32],
                                  options: DynamicEvaluationOptions = .init()) throws(RNNCoreError) -> DynamicEvaluationResult {
        try options.validate()
        guard ids.count >= 2 else {
            throw .invalidArgument("dynamic evaluation needs at least 2 tokens, got \(ids.count)")
        }
        let (staticLoss, count) = try meanLoss(on: ids, batchSize: options.batchSize, bptt: options.bptt)

        var settings = configuration
        settings.dropout = 0  // dropout changes no parameter, so the copy has the same weights
        let copy = try RNNLanguageModel(configuration: settings, tensors: namedTensors)
        copy.truncation = truncation
        let parameters = copy.parameters
        let sgd = SGD(learningRate: options.learningRate)
        let clip = options.clipNorm ?? 0

        let predictions = ids.count - 1
        let N = min(options.batchSize, predictions)
        let streamLength = (predictions + N - 1) / N
        let padding: Int32 = -1
        var result = DynamicEvaluationResult(staticLoss: staticLoss, dynamicLoss: .nan, count: count,
                                             options: options, updates: 0, clippedUpdates: 0, divergedAfter: nil)
        var sums = [0.0, 0.0]  // the loss summed over the predictions scored, and their count, as meanLoss sums
        var inputs = [Int32](repeating: 0, count: N * options.bptt)
        var targets = inputs
        var start = 0
        while start < streamLength {
            let T = min(options.bptt, streamLength - start)
            Self.window(ids, streams: N, streamLength: streamLength, start: start, steps: T, padding: padding,
                        inputs: &inputs, targets: &targets)
            let before = copy.state
            let loss: Double
            let counted: Int
            do throws(RNNCoreError) {
                (loss, counted) = try copy.loss(ids: inputs, targets: targets, batchSize: N, ignoreIndex: padding)
            } catch .kernel(.nonFinite, _) {
                result.divergedAfter = Int(sums[1])
                return result
            }
            sums[0] += loss * Double(counted)
            sums[1] += Double(counted)
            start += T
            guard start < streamLength else { break }  // nothing is read after the last window's step

            // The step: gradients from the same window with the same starting state, then the scoring pass's
            // final state again (the gradient pass's one need not match it bit for bit).
            let after = copy.state
            try copy.restoreState(before)
            parameters.zeroGradients()
            do throws(RNNCoreError) {
                _ = try copy.lossAndGradients(ids: inputs, targets: targets, batchSize: N, ignoreIndex: padding)
                let norm = try gradientNorm(parameters)
                let scale = clippingScale(norm: norm, maxNorm: clip)
                if scale < 1 { result.clippedUpdates += 1 }
                try sgd.step(parameters, gradientScale: scale)
            } catch .kernel(.nonFinite, _) {
                result.divergedAfter = Int(sums[1])
                return result
            }
            result.updates += 1
            try copy.restoreState(after)
        }
        let scored = Int(sums[1])
        precondition(scored == predictions, "dynamic evaluation counted \(scored) of \(predictions) predictions")
        result.dynamicLoss = sums[0] / sums[1]
        return result
    }

    /// Writes window `start..<start+steps` of `streams` contiguous streams of `streamLength` predictions into
    /// `inputs` and `targets` (streams·steps each, batch-major), the positions past the text padded: the windows
    /// of ``meanLoss(on:batchSize:bptt:communicator:)``.
    private static func window(_ ids: [Int32], streams: Int, streamLength: Int, start: Int, steps T: Int,
                               padding: Int32, inputs: inout [Int32], targets: inout [Int32]) {
        let predictions = ids.count - 1
        if inputs.count != streams * T {
            inputs = [Int32](repeating: 0, count: streams * T)
            targets = inputs
        }
        for stream in 0..<streams {
            for t in 0..<T {
                let position = stream * streamLength + start + t
                let inside = position < predictions
                inputs[stream * T + t] = inside ? ids[position] : 0
                targets[stream * T + t] = inside ? ids[position + 1] : padding
            }
        }
    }
}
