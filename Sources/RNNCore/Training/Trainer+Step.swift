import Foundation

/// What one training step did: its loss, the gradient's global norm, and whether the update was clipped or skipped.
public struct StepResult: Sendable, Equatable {
    /// The mean cross-entropy of the window's targets (of all ranks' streams in data-parallel training); NaN when
    /// the step was skipped.
    public var loss: Double
    /// The global L2 norm of the gradient before clipping (of the gradient averaged over the ranks in data-parallel
    /// training); NaN when it was not measured: a skipped step, or a step inside
    /// ``Trainer/train(on:validation:progress:shouldStop:)`` without clipping.
    public var gradientNorm: Double
    /// Whether clipping scaled the update down: the norm exceeded ``TrainingOptions/clipNorm``.
    public var isClipped: Bool
    /// Whether the update was skipped because the loss or the gradient norm was NaN or infinite (only with
    /// ``TrainingOptions/skipNonFinite``; without it the step throws).
    public var isSkipped: Bool

    /// Creates a result.
    public init(loss: Double, gradientNorm: Double, isClipped: Bool, isSkipped: Bool) {
        self.loss = loss
        self.gradientNorm = gradientNorm
        self.isClipped = isClipped
        self.isSkipped = isSkipped
    }
}

extension Trainer {
    /// Trains on one window that the caller chose: one forward and backward pass, global-norm clipping by
    /// ``TrainingOptions/clipNorm``, and one update by the ``optimizer`` — the same step that
    /// ``train(on:validation:progress:shouldStop:)`` runs for each of its batches, for a training loop of one's own.
    ///
    /// The step changes the weights, the optimizer's state (Adam's moments and step count), the state the model
    /// carries into the next window (consecutive windows of the same streams continue each other; call
    /// ``RNNLanguageModel/resetState()`` between unrelated ones) and the dropout generator. It does not touch the
    /// run's bookkeeping: ``epoch``, ``batch``, the step count, the reports and the position in the training text
    /// stay as they are, so a manual step neither advances nor breaks a later
    /// ``train(on:validation:progress:shouldStop:)``, and a training checkpoint does not record it as progress.
    ///
    /// With a ``communicator`` of K ranks, every rank calls it with its own `batchSize` streams (the same count on
    /// every rank); the loss and the gradient are averaged over the ranks, so every rank applies the same update.
    /// - Parameters:
    ///   - inputs: N·T token ids, N streams of T consecutive tokens, batch-major (`inputs[n*T + t]`).
    ///   - targets: the N·T ids to predict, each the token after its input.
    ///   - batchSize: N, the number of streams.
    /// - Returns: the loss, the gradient norm (always measured, with or without clipping) and what happened.
    /// - Throws: ``RNNCoreError/invalidState(_:)`` for a non-finite loss or gradient norm (unless
    ///   ``TrainingOptions/skipNonFinite``: the step is skipped and the carried state reset instead) or a call
    ///   while ``train(on:validation:progress:shouldStop:)`` runs; ``RNNCoreError/shapeMismatch(_:)`` and
    ///   ``RNNCoreError/kernel(_:operation:)`` for windows that do not fit the model.
    @discardableResult
    public func step(inputs: [Int32], targets: [Int32], batchSize: Int) throws(RNNCoreError) -> StepResult {
        guard !isTraining else { throw .invalidState("step(inputs:targets:batchSize:) cannot run inside train(on:)") }
        let (rank, ranks) = (communicator?.rank ?? 0, communicator?.size ?? 1)
        model.dropoutShard = ranks > 1 ? DropoutShard(first: rank * batchSize, total: batchSize * ranks) : nil
        return try update(inputs: inputs, targets: targets, batchSize: batchSize, parameters: model.parameters,
                          countCorrect: false, alwaysMeasureNorm: true, at: "in a training step").result
    }

    /// One update of every parameter from one window of this rank's streams, the one implementation of a training
    /// step: zero the gradients, forward and backward, with several ranks the mean of the losses and of the
    /// gradients over the ranks, global-norm clipping (measured here, applied by the optimizer at no extra pass), the optimizer's
    /// step.
    ///
    /// A non-finite loss or gradient norm throws, naming the step by `location`, or with `skipNonFinite` skips the
    /// update and resets the carried state (which may hold the NaN). The norm is measured for clipping, and also
    /// without it when `alwaysMeasureNorm`.
    /// - Returns: the result and, with `countCorrect`, the number of targets predicted as the most likely token.
    func update(inputs: [Int32], targets: [Int32], batchSize localBatch: Int, parameters: [Parameter],
                countCorrect: Bool, alwaysMeasureNorm: Bool,
                at location: @autoclosure () -> String) throws(RNNCoreError) -> (result: StepResult, correct: Int) {
        let ranks = communicator?.size ?? 1
        parameters.zeroGradients()
        var problem: String?
        var loss = Double.nan
        var right = 0
        do throws(RNNCoreError) {
            if let first = nonFiniteLossFromStep, run.step + 1 >= first {
                throw RNNCoreError.kernel(.nonFinite, operation: "injected non-finite loss")
            }
            if countCorrect {
                (loss, _) = try model.lossAndGradients(ids: inputs, targets: targets, batchSize: localBatch,
                                                       correct: &right)
            } else {
                (loss, _) = try model.lossAndGradients(ids: inputs, targets: targets, batchSize: localBatch)
            }
        } catch .kernel(.nonFinite, _) {
            problem = "non-finite loss"
        }
        if ranks > 1 {
            let reductionStart = Date()
            defer { communicationSeconds += Date().timeIntervalSince(reductionStart) }
            // The loss and accuracy of all N streams, and whether any rank failed; then the mean gradient.
            var sums = [problem == nil ? loss : 0, Double(right), problem == nil ? 0 : 1]
            try allreduce(&sums)
            if sums[2] > 0 {
                problem = problem ?? "non-finite loss (on another rank)"
            } else {
                (loss, right) = (sums[0] / Double(ranks), Int(sums[1]))
                try averageGradients(parameters, over: ranks)
            }
        }
        var norm = Double.nan
        var scale: Float = 1
        let clip = options.clipNorm ?? 0
        if problem == nil, clip > 0 || alwaysMeasureNorm {
            do throws(RNNCoreError) {
                norm = try gradientNorm(parameters)
                scale = clippingScale(norm: norm, maxNorm: clip)
            } catch .kernel(.nonFinite, _) {
                problem = "non-finite gradient norm"
            }
        }
        if let problem {
            guard options.skipNonFinite else {
                throw .invalidState("\(problem) \(location()): training diverged; lower the learning rate or clip harder")
            }
            model.resetState()  // the carried state may hold the NaN
            return (StepResult(loss: .nan, gradientNorm: .nan, isClipped: false, isSkipped: true), 0)
        }
        try optimizer.step(parameters, gradientScale: scale)
        return (StepResult(loss: loss, gradientNorm: norm, isClipped: scale < 1, isSkipped: false), right)
    }
}
