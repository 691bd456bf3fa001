import Foundation

/// Settings of a training run.
public struct TrainingOptions: Sendable, Codable, Equatable {
    /// N, the number of parallel streams.
    public var batchSize: Int = 20
    /// T, the truncated-BPTT window.
    public var bptt: Int = 35
    /// Passes over the training text.
    public var epochs: Int = 4
    /// Clip the global gradient norm to this value; nil or 0 for no clipping.
    public var clipNorm: Double? = 0.25
    /// Divide the learning rate by this factor after an epoch whose validation perplexity did not improve
    /// (1 disables decay).
    public var learningRateDecay: Float = 1
    /// At the end, put back the weights of the epoch with the best validation perplexity.
    public var restoreBest: Bool = true
    /// Batch size for the validation perplexity.
    public var evaluationBatchSize: Int = 10
    /// Also measure the training accuracy (share of targets that were the most likely token) of every epoch.
    public var measureAccuracy: Bool = false
    /// Skip (and count) an update whose loss or gradient norm is NaN or infinite instead of stopping with an error.
    public var skipNonFinite: Bool = false
    /// Report progress every this many batches.
    public var progressInterval: Int = 20

    /// Default options: the textbook setting (N 20, T 35, 4 epochs, clip 0.25).
    public init() {}
}

/// What the trainer reports while it runs.
public enum TrainingEvent: Sendable {
    /// A few batches done: position in the epoch, running training perplexity, throughput.
    case progress(TrainingProgress)
    /// An epoch finished (and was evaluated on the validation text, if any).
    case epochEnded(EpochReport)
}

/// Progress within an epoch.
public struct TrainingProgress: Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Batches done in this epoch.
    public var batch: Int
    /// Batches in an epoch.
    public var batchesPerEpoch: Int
    /// exp(mean loss) over this epoch's batches so far.
    public var trainPerplexity: Double
    /// Training tokens processed per second in this epoch.
    public var tokensPerSecond: Double
    /// Seconds since training began.
    public var elapsed: Double
    /// Estimated seconds until the last epoch ends.
    public var remaining: Double
}

/// The result of one epoch.
public struct EpochReport: Sendable, Codable {
    /// 1-based epoch number.
    public var epoch: Int
    /// exp(mean training loss) over the epoch.
    public var trainPerplexity: Double
    /// Validation perplexity after the epoch, if a validation text was given.
    public var validPerplexity: Double?
    /// The learning rate used during the epoch.
    public var learningRate: Float
    /// Training tokens per second (excluding validation).
    public var tokensPerSecond: Double
    /// Seconds the epoch took, validation included.
    public var seconds: Double
    /// Updates skipped because the loss or gradient norm was not finite (only with `skipNonFinite`).
    public var skippedUpdates: Int = 0
    /// Share of training targets predicted as the most likely token during the epoch (with `measureAccuracy`).
    public var trainAccuracy: Double?
}

/// Trains a language model with truncated BPTT.
public final class Trainer {
    /// The model being trained.
    public let model: RNNLanguageModel
    /// The optimizer applied after each window.
    public let optimizer: Optimizer
    /// The run's settings.
    public let options: TrainingOptions
    /// Completed epochs so far.
    public private(set) var reports: [EpochReport] = []

    /// Creates a trainer.
    public init(model: RNNLanguageModel, optimizer: Optimizer, options: TrainingOptions) {
        self.model = model
        self.optimizer = optimizer
        self.options = options
    }

    /// Runs `options.epochs` epochs over `train`, evaluating on `valid` after each.
    /// - Parameter progress: called on the training thread with progress and epoch reports.
    /// - Returns: one report per epoch.
    @discardableResult
    public func train(on train: [Int32], validation valid: [Int32]? = nil,
                      progress: (TrainingEvent) -> Void = { _ in }) throws(RNNCoreError) -> [EpochReport] {
        guard options.epochs >= 1 else { throw .invalidArgument("epochs must be at least 1") }
        var batcher = try BPTTBatcher(ids: train, batchSize: options.batchSize, bptt: options.bptt)
        let parameters = model.parameters
        let tokensPerBatch = Double(options.batchSize * options.bptt)
        let start = Date()
        var best: (perplexity: Double, tensors: [Tensor])?

        var inputs: [Int32] = []
        var targets: [Int32] = []
        for epoch in 1...options.epochs {
            let epochStart = Date()
            var lossSum = 0.0
            var counted = 0
            var skipped = 0
            var correctSum = 0
            for batch in 1...batcher.batchesPerEpoch {
                batcher.next(inputs: &inputs, targets: &targets)
                parameters.zeroGradients()
                // A non-finite loss or gradient norm stops training, or with `skipNonFinite` skips the update.
                var problem: String?
                var loss = Double.nan
                var scale: Float = 1
                do {
                    if options.measureAccuracy {
                        var right = 0
                        (loss, _) = try model.lossAndGradients(ids: inputs, targets: targets,
                                                               batchSize: options.batchSize, correct: &right)
                        correctSum += right
                    } else {
                        (loss, _) = try model.lossAndGradients(ids: inputs, targets: targets, batchSize: options.batchSize)
                    }
                    // Clipping by global norm: measure, then let the optimizer apply the factor (no extra pass).
                    if let clip = options.clipNorm, clip > 0 {
                        do {
                            scale = clippingScale(norm: try gradientNorm(parameters), maxNorm: clip)
                        } catch .kernel(.nonFinite, _) {
                            problem = "non-finite gradient norm"
                        }
                    }
                } catch .kernel(.nonFinite, _) {
                    problem = "non-finite loss"
                }
                if let problem {
                    guard options.skipNonFinite else {
                        throw .invalidState("\(problem) at epoch \(epoch), batch \(batch): training diverged; lower the learning rate or clip harder")
                    }
                    skipped += 1
                    model.resetState()  // the carried state may hold the NaN
                    continue
                }
                try optimizer.step(parameters, gradientScale: scale)
                lossSum += loss
                counted += 1
                if batch % max(options.progressInterval, 1) == 0 || batch == batcher.batchesPerEpoch {
                    let seconds = Date().timeIntervalSince(epochStart)
                    let done = Double((epoch - 1) * batcher.batchesPerEpoch + batch)
                    let all = Double(options.epochs * batcher.batchesPerEpoch)
                    let elapsed = Date().timeIntervalSince(start)
                    progress(.progress(TrainingProgress(
                        epoch: epoch, batch: batch, batchesPerEpoch: batcher.batchesPerEpoch,
                        trainPerplexity: exp(lossSum / Double(max(counted, 1))),
                        tokensPerSecond: Double(batch) * tokensPerBatch / max(seconds, 1e-9),
                        elapsed: elapsed, remaining: elapsed / done * (all - done))))
                }
            }
            let trainSeconds = Date().timeIntervalSince(epochStart)
            var report = EpochReport(
                epoch: epoch, trainPerplexity: counted > 0 ? exp(lossSum / Double(counted)) : .nan, validPerplexity: nil,
                learningRate: optimizer.learningRate,
                tokensPerSecond: Double(batcher.batchesPerEpoch) * tokensPerBatch / max(trainSeconds, 1e-9),
                seconds: 0, skippedUpdates: skipped,
                trainAccuracy: options.measureAccuracy && counted > 0
                    ? Double(correctSum) / Double(counted * options.batchSize * options.bptt) : nil)
            if let valid {
                let perplexity = try model.perplexity(on: valid, batchSize: options.evaluationBatchSize,
                                                      bptt: options.bptt)
                report.validPerplexity = perplexity
                if perplexity < best?.perplexity ?? .infinity {
                    best = (perplexity, parameters.map(\.value))
                } else if options.learningRateDecay > 1 {
                    optimizer.learningRate /= options.learningRateDecay
                }
            }
            report.seconds = Date().timeIntervalSince(epochStart)
            reports.append(report)
            progress(.epochEnded(report))
        }
        if options.restoreBest, let best {
            for (parameter, value) in zip(parameters, best.tensors) { parameter.value = value }
        }
        return reports
    }
}
