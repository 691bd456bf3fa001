import Foundation

/// How a run trains: batches, windows, epochs, clipping, the learning-rate schedule and truncation (part of
/// ``TrainingSettings``, where its JSON form is described).
public struct TrainingOptions: Sendable, Codable, Equatable {
    /// N, the number of parallel streams.
    public var batchSize: Int = 20
    /// T, the truncated-BPTT window.
    public var bptt: Int = 35
    /// Passes over the training text; nil: ``TrainingSettings/defaultEpochs(builtInCorpus:)`` (4 for a text of
    /// one's own, which is what a ``Trainer`` given nil trains).
    public var epochs: Int? = nil
    /// Clip the global gradient norm to this value; nil or 0 for no clipping.
    public var clipNorm: Double? = 0.25
    /// Divide the learning rate by this factor after an epoch whose validation perplexity did not improve
    /// (1 disables decay). Only runs with a validation text (or `learningRateDecayStart`) decay.
    public var learningRateDecay: Float = 2
    /// From this epoch on, divide the learning rate by `learningRateDecay` after every epoch, improved or not
    /// (Zaremba et al.'s schedule); before it, only after an epoch without validation improvement. nil: only then.
    public var learningRateDecayStart: Int? = nil
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
    /// Backpropagate each output's error through at most this many steps inside a window; 0 is the whole window.
    /// The trainer sets its model's ``RNNLanguageModel/truncation`` to it.
    public var truncation: Int = 0

    /// Default options: the textbook setting (N 20, T 35, clip 0.25), the learning rate halved after an epoch
    /// without validation improvement, the epochs left to the context.
    public init() {}

    /// The number of epochs a trainer runs: ``epochs``, or 4 (``TrainingSettings/defaultEpochs(builtInCorpus:)``
    /// for a text of one's own) when it is nil.
    public var resolvedEpochs: Int { epochs ?? TrainingSettings.defaultEpochs(builtInCorpus: false) }
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
///
/// A run can stop between two batches and go on later, in this process or another: ``train(on:validation:progress:shouldStop:)``
/// returns when its `shouldStop` hook says so, ``saveTrainingState(to:vocabulary:metadata:)`` writes everything the
/// rest of the run depends on, and ``init(resumingFrom:)-(URL)`` rebuilds the trainer, model and optimizer from that file.
/// A run stopped and resumed any number of times ends with the same weights and losses, bit for bit, as one that
/// never stopped. For a training loop of one's own, ``step(inputs:targets:batchSize:)`` runs one step of the same
/// kind.
///
/// A trainer, its model and its optimizer hold mutable state and are not `Sendable`: use them from one task or
/// actor at a time, and move them between tasks by sending them (<doc:Concurrency>).
public final class Trainer {
    /// The model being trained.
    public let model: RNNLanguageModel
    /// The optimizer applied after each window.
    public let optimizer: Optimizer
    /// How the run trains (its epochs resolved: never nil).
    public let options: TrainingOptions
    /// The settings record of the run, as its training checkpoints store it: the one it was made from
    /// (``init(settings:vocabularySize:)``, ``init(resumingFrom:)-(TrainingCheckpoint)``), or for a trainer made
    /// from a model and an optimizer, what they and the options describe (the optimizer's learning rate at
    /// creation; `seed` and `level` at their defaults, the level written as the saved vocabulary's). nil for an
    /// optimizer other than ``SGD`` and ``Adam``.
    public let settings: TrainingSettings?
    /// Completed epochs so far.
    public internal(set) var reports: [EpochReport] = []

    /// Where the run stands between two batches, besides weights and optimizer (saved in training checkpoints).
    var run = RunState()
    /// The data of the run: its fingerprints, and the arrays they were computed from (kept so that a later call
    /// with the very same arrays need not hash them again).
    var data: (train: TokenFingerprint, valid: TokenFingerprint?)?
    private var fingerprinted: (train: [Int32], valid: [Int32]?)?
    /// Whether `train(on:)` is running (the training state cannot be saved then).
    private(set) var isTraining = false

    /// Testing aid: from this step on (1-based, as ``step`` counts), every batch's loss is treated as non-finite, as
    /// if the loss kernel had reported NaN, so that tests can force a divergence on any machine instead of hoping
    /// that some learning rate overflows the same way everywhere. Not saved in training checkpoints.
    @_spi(FaultInjection) public var nonFiniteLossFromStep: Int?

    /// The group of processes this trainer is one rank of, for data-parallel training; nil (the default) trains
    /// in this process alone.
    ///
    /// Every rank holds the same model, options and texts and calls ``train(on:validation:progress:shouldStop:)``
    /// with them. Rank r reads streams r·N/K ..< (r+1)·N/K of the N the options ask for (N must be a multiple of K),
    /// the gradients are averaged across ranks with one allreduce over one contiguous buffer per step, and every
    /// rank applies the same update (clipping sees the global gradient), so the weights stay identical; dropout
    /// draws the masks one process would. Losses, accuracy and the validation perplexity are those of all N
    /// streams. The texts' fingerprints are compared across ranks when training starts and the weights after every
    /// epoch (an error when they differ). Not saved in training checkpoints: a resumed run is given its group again.
    public var communicator: (any Communicator)?
    var reductionBuffer: [Float] = []
    /// Seconds this trainer has spent in the per-step collectives of data-parallel training (the loss and the
    /// gradient allreduces, waiting for the slowest rank included), since it was created; 0 for one process.
    public internal(set) var communicationSeconds: Double = 0

    /// Creates a trainer of `model` with `optimizer`; sets the model's ``RNNLanguageModel/truncation`` to the
    /// options' ``TrainingOptions/truncation``.
    public convenience init(model: RNNLanguageModel, optimizer: Optimizer, options: TrainingOptions) {
        let settings = OptimizerSettings(describing: optimizer).map {
            TrainingSettings(model: ModelSettings(model.configuration), training: options, optimizer: $0)
        }
        self.init(model: model, optimizer: optimizer, options: options, settings: settings)
    }

    /// Creates a new run of `settings` over a vocabulary of `vocabularySize` tokens: a model initialised from
    /// `settings.seed`, a fresh optimizer, and the context-dependent defaults resolved for a text of one's own
    /// (pass settings already ``TrainingSettings/resolved(builtInCorpus:)`` for another context).
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` naming a setting out of range, or the model's errors
    ///   (``RNNLanguageModel/init(configuration:seed:)``).
    public convenience init(settings: TrainingSettings, vocabularySize: Int) throws(RNNCoreError) {
        let settings = settings.resolved()
        try settings.validate()
        let model = try RNNLanguageModel(configuration: settings.model.configuration(vocabularySize: vocabularySize),
                                         seed: settings.seed)
        self.init(model: model, optimizer: settings.optimizer.makeOptimizer(), options: settings.training,
                  settings: settings)
    }

    /// The designated initialiser: the options' epochs resolved, the model's truncation set from the options.
    init(model: RNNLanguageModel, optimizer: Optimizer, options: TrainingOptions, settings: TrainingSettings?) {
        var options = options
        options.epochs = options.resolvedEpochs
        let settings = settings.map { settings in
            var resolved = settings.resolved()
            resolved.training = options
            return resolved
        }
        model.truncation = options.truncation
        self.model = model
        self.optimizer = optimizer
        self.options = options
        self.settings = settings
    }

    /// The number of epochs the run trains (``TrainingOptions/resolvedEpochs``).
    public var epochCount: Int { options.resolvedEpochs }

    /// The 1-based epoch in progress (``epochCount`` + 1 once training has finished).
    public var epoch: Int { reports.count + 1 }
    /// Batches done in the epoch in progress.
    public var batch: Int { run.batch }
    /// Batches done since the run began, skipped ones included.
    public var step: Int { run.step }
    /// Whether every epoch has been trained.
    public var isFinished: Bool { reports.count >= epochCount }

    /// Trains until ``epochCount`` epochs are done, evaluating on `valid` after each, or until `shouldStop` says
    /// to stop.
    ///
    /// A call continues where the previous one stopped (or where the training checkpoint it was resumed from
    /// stopped), so every call must pass the same texts; a trainer that has finished returns at once.
    /// - Parameters:
    ///   - train: the training text's token ids.
    ///   - valid: the validation text's token ids, evaluated after every epoch; nil for none.
    ///   - progress: called on the training thread with progress and epoch reports.
    ///   - shouldStop: asked after every batch (after the epoch's evaluation when the batch ended an epoch) except
    ///     the run's last; returning true makes the call return there. Cheap to call: poll a flag, count batches.
    /// - Returns: one report per completed epoch.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` for texts other than those the run started with, or
    ///   ``RNNCoreError/invalidState(_:)`` naming the epoch and batch of a non-finite loss or gradient norm (unless
    ///   `options.skipNonFinite`).
    @discardableResult
    public func train(on train: [Int32], validation valid: [Int32]? = nil,
                      progress: (TrainingEvent) -> Void = { _ in },
                      shouldStop: () -> Bool = { false }) throws(RNNCoreError) -> [EpochReport] {
        guard epochCount >= 1 else { throw .invalidArgument("epochs must be at least 1") }
        guard !isTraining else { throw .invalidState("train(on:) is already running on this trainer") }
        guard !isFinished else { return reports }
        let (rank, ranks) = (communicator?.rank ?? 0, communicator?.size ?? 1)
        guard options.batchSize % ranks == 0 else {
            throw .invalidArgument("the batch of \(options.batchSize) streams cannot be shared by \(ranks) ranks: the batch size must be a multiple of the number of ranks")
        }
        let localBatch = options.batchSize / ranks
        var batcher = try BPTTBatcher(ids: train, batchSize: options.batchSize, bptt: options.bptt,
                                      timeIndex: run.timeIndex, streams: (rank * localBatch)..<((rank + 1) * localBatch))
        model.dropoutShard = ranks > 1 ? DropoutShard(first: rank * localBatch, total: options.batchSize) : nil
        try keepOwnStreamsOfCarriedState(batcher.streams)
        try checkData(train: train, valid: valid)
        if let data {
            try checkSameAcrossRanks("\(data.train.tokenCount) \(data.train.sha256) \(data.valid.map { "\($0.tokenCount) \($0.sha256)" } ?? "none")",
                                     "the training and validation texts (here: training \(data.train))")
        }
        guard run.batch < batcher.batchesPerEpoch, run.timeIndex < train.count - 1 else {
            throw .invalidArgument("the run stopped at batch \(run.batch), time index \(run.timeIndex), beyond an epoch of this text (\(batcher.batchesPerEpoch) batches)")
        }
        isTraining = true
        defer { isTraining = false }

        let parameters = model.parameters
        let tokensPerBatch = Double(options.batchSize * options.bptt)
        let allSteps = epochCount * batcher.batchesPerEpoch
        let callStart = Date()
        let stepAtCallStart = run.step
        var segmentStart = callStart  // when this call began its part of the epoch in progress
        var batchAtSegmentStart = run.batch

        /// Saves the time of the interrupted epoch and returns the reports so far.
        func stop() -> [EpochReport] {
            let now = Date()
            run.epochSeconds += now.timeIntervalSince(segmentStart)
            run.elapsedSeconds += now.timeIntervalSince(callStart)
            return reports
        }

        var inputs: [Int32] = []
        var targets: [Int32] = []
        while !isFinished {
            let epoch = reports.count + 1
            while run.batch < batcher.batchesPerEpoch {
                let batch = run.batch + 1
                batcher.next(inputs: &inputs, targets: &targets)
                let (result, right) = try update(
                    inputs: inputs, targets: targets, batchSize: localBatch, parameters: parameters,
                    countCorrect: options.measureAccuracy, alwaysMeasureNorm: false,
                    at: "at epoch \(epoch), batch \(batch) (step \(run.step + 1))")
                if result.isSkipped {
                    run.skipped += 1
                } else {
                    run.lossSum += result.loss
                    run.counted += 1
                    run.correct += right
                }
                run.batch = batch
                run.step += 1
                run.timeIndex = batcher.timeIndex
                if !result.isSkipped
                    && (batch % max(options.progressInterval, 1) == 0 || batch == batcher.batchesPerEpoch) {
                    let now = Date()
                    let callSeconds = now.timeIntervalSince(callStart)
                    progress(.progress(TrainingProgress(
                        epoch: epoch, batch: batch, batchesPerEpoch: batcher.batchesPerEpoch,
                        trainPerplexity: exp(run.lossSum / Double(max(run.counted, 1))),
                        tokensPerSecond: Double(batch - batchAtSegmentStart) * tokensPerBatch
                            / max(now.timeIntervalSince(segmentStart), 1e-9),
                        elapsed: run.elapsedSeconds + callSeconds,
                        remaining: callSeconds / Double(run.step - stepAtCallStart) * Double(allSteps - run.step))))
                }
                if batch < batcher.batchesPerEpoch && shouldStop() { return stop() }
            }

            // Throughput over this call's part of the epoch (validation excluded).
            let segmentSeconds = Date().timeIntervalSince(segmentStart)
            var report = EpochReport(
                epoch: epoch, trainPerplexity: run.counted > 0 ? exp(run.lossSum / Double(run.counted)) : .nan,
                validPerplexity: nil, learningRate: optimizer.learningRate,
                tokensPerSecond: Double(batcher.batchesPerEpoch - batchAtSegmentStart) * tokensPerBatch
                    / max(segmentSeconds, 1e-9),
                seconds: 0, skippedUpdates: run.skipped,
                trainAccuracy: options.measureAccuracy && run.counted > 0
                    ? Double(run.correct) / Double(run.counted * options.batchSize * options.bptt) : nil)
            if let valid {
                let perplexity = try model.perplexity(on: valid, batchSize: options.evaluationBatchSize,
                                                      bptt: options.bptt, communicator: communicator)
                report.validPerplexity = perplexity
                let scheduled = options.learningRateDecayStart.map { epoch >= $0 } ?? false
                if perplexity < run.bestPerplexity ?? .infinity {
                    run.bestPerplexity = perplexity
                    if options.restoreBest {
                        run.bestParameters = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.value) })
                    }
                } else if options.learningRateDecay > 1, !scheduled {
                    optimizer.learningRate /= options.learningRateDecay
                }
            }
            if let start = options.learningRateDecayStart, epoch >= start, options.learningRateDecay > 1 {
                optimizer.learningRate /= options.learningRateDecay
            }
            try checkSameAcrossRanks(weightChecksum(parameters), "the weights after epoch \(epoch)")
            let now = Date()
            report.seconds = run.epochSeconds + now.timeIntervalSince(segmentStart)
            run.startEpoch()
            segmentStart = now
            batchAtSegmentStart = 0
            reports.append(report)
            progress(.epochEnded(report))
            if !isFinished && shouldStop() { return stop() }
        }
        run.elapsedSeconds += Date().timeIntervalSince(callStart)
        if options.restoreBest, let best = run.bestParameters {
            for parameter in parameters { if let value = best[parameter.name] { parameter.value = value } }
        }
        return reports
    }

    /// The state the model carries into the next window for all N streams: with several ranks, each rank's rows
    /// (its streams) put at their place in zeros and summed across the ranks (exact: every entry is one rank's
    /// value plus zeros). A collective call.
    func carriedStateOfAllStreams() throws(RNNCoreError) -> [String: Tensor] {
        let local = model.carriedState
        guard let communicator, communicator.size > 1 else { return local }
        let (N, K) = (options.batchSize, communicator.size)
        let first = communicator.rank * (N / K)
        var all: [String: Tensor] = [:]
        for name in local.keys.sorted() {
            let mine = local[name]!
            let width = mine.shape[1]
            var global = [Float](repeating: 0, count: N * width)
            mine.withUnsafeBufferPointer { rows in
                for (i, v) in rows.enumerated() { global[first * width + i] = v }
            }
            do {
                try global.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
            } catch {
                throw .invalidState("gathering the carried state across \(K) ranks failed: \(error)")
            }
            all[name] = try Tensor(shape: [N, width], scalars: global)
        }
        return all
    }

    /// Keeps, of a carried state of all N streams (as a resumed checkpoint holds), this rank's rows.
    private func keepOwnStreamsOfCarriedState(_ streams: Range<Int>) throws(RNNCoreError) {
        let state = model.carriedState
        guard let any = state.values.first, any.shape[0] == options.batchSize, streams.count < options.batchSize else { return }
        var own: [String: Tensor] = [:]
        for (name, tensor) in state {
            let width = tensor.shape[1]
            let rows = tensor.withUnsafeBufferPointer { Array($0[(streams.lowerBound * width)..<(streams.upperBound * width)]) }
            own[name] = try Tensor(shape: [streams.count, width], scalars: rows)
        }
        try model.restoreCarriedState(own)
    }

    /// Sums `values` over the ranks.
    func allreduce(_ values: inout [Double]) throws(RNNCoreError) {
        guard let communicator else { return }
        do {
            try values.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        } catch {
            throw .invalidState("allreduce across \(communicator.size) ranks failed: \(error)")
        }
    }

    /// Replaces every gradient by its mean over the ranks: one allreduce over one contiguous buffer holding them
    /// all.
    func averageGradients(_ parameters: [Parameter], over ranks: Int) throws(RNNCoreError) {
        guard let communicator else { return }
        let total = parameters.reduce(0) { $0 + $1.gradient.count }
        if reductionBuffer.count != total { reductionBuffer = [Float](repeating: 0, count: total) }
        let scale = 1 / Float(ranks)
        do {
            try reductionBuffer.withUnsafeMutableBufferPointer { buffer throws(CommunicatorError) in
                var offset = 0
                for p in parameters {
                    p.gradient.withUnsafeBufferPointer { g in
                        _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + g.count)]).update(fromContentsOf: g)
                    }
                    offset += p.gradient.count
                }
                try communicator.allreduceSum(buffer)
                offset = 0
                for p in parameters {
                    p.gradient.withUnsafeMutableBufferPointer { g in
                        for i in g.indices { g[i] = buffer[offset + i] * scale }
                    }
                    offset += p.gradient.count
                }
            }
        } catch {
            throw .invalidState("gradient allreduce across \(ranks) ranks failed: \(error)")
        }
    }

    /// A fingerprint of the weights: the bits of their sum and of their sum of squares, accumulated in double.
    private func weightChecksum(_ parameters: [Parameter]) -> String {
        var (sum, squares) = (0.0, 0.0)
        for p in parameters {
            p.value.withUnsafeBufferPointer { v in
                for x in v { sum += Double(x); squares += Double(x) * Double(x) }
            }
        }
        return "\(String(sum.bitPattern, radix: 16)) \(String(squares.bitPattern, radix: 16))"
    }

    /// Throws on every rank unless `text` is the same on every rank: rank 0's is broadcast, each rank compares,
    /// and the count of ranks that differ is summed, so that every rank gives the same error.
    private func checkSameAcrossRanks(_ text: String, _ what: String) throws(RNNCoreError) {
        guard let communicator, communicator.size > 1 else { return }
        let mine = Array(text.utf8)
        var rootLength = communicator.rank == 0 ? mine.count : 0
        var differing = [0.0]
        do {
            try withUnsafeMutableBytes(of: &rootLength) { try communicator.broadcast($0, root: 0) }
            var root = communicator.rank == 0 ? mine : [UInt8](repeating: 0, count: rootLength)
            try root.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0) }
            differing[0] = root == mine ? 0 : 1
            try differing.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        } catch {
            throw .invalidState("comparing \(what) across \(communicator.size) ranks failed: \(error)")
        }
        guard differing[0] == 0 else {
            throw .invalidState("the ranks disagree on \(what): \(Int(differing[0])) of the \(communicator.size) ranks differ from rank 0")
        }
    }

    /// Remembers the fingerprints of the run's texts, or checks that these are the same texts.
    private func checkData(train: [Int32], valid: [Int32]?) throws(RNNCoreError) {
        func same(_ a: [Int32]?, _ b: [Int32]?) -> Bool {
            guard let a, let b else { return a == nil && b == nil }
            return a.count == b.count && a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in pa.baseAddress == pb.baseAddress }
            }
        }
        // The same arrays as last time (the trainer keeps them, so their storage cannot have changed): done.
        if let seen = fingerprinted, same(seen.train, train), same(seen.valid, valid) { return }
        let fingerprints = (train: TokenFingerprint(train), valid: valid.map(TokenFingerprint.init))
        if let data {
            guard data.train == fingerprints.train else {
                throw .invalidArgument("the training text is not the one this run started with (\(fingerprints.train), expected \(data.train))")
            }
            guard data.valid == fingerprints.valid else {
                throw .invalidArgument("the validation text is not the one this run started with (\(fingerprints.valid.map(String.init(describing:)) ?? "none"), expected \(data.valid.map(String.init(describing:)) ?? "none"))")
            }
        }
        data = fingerprints
        fingerprinted = (train, valid)
    }
}

/// The bookkeeping of a run between two batches, besides weights and optimizer.
struct RunState {
    /// Batches done in the epoch in progress.
    var batch = 0
    /// Batches done since the run began.
    var step = 0
    /// The batcher's position (``BPTTBatcher/timeIndex``).
    var timeIndex = 0
    /// The epoch's sum of the losses of its applied updates, their number, the skipped ones, and the correct
    /// predictions (with `measureAccuracy`).
    var lossSum = 0.0
    var counted = 0
    var skipped = 0
    var correct = 0
    /// Training seconds of the epoch in progress, and of the whole run, before the current call.
    var epochSeconds = 0.0
    var elapsedSeconds = 0.0
    /// The best validation perplexity so far, and (with `restoreBest`) the weights that reached it.
    var bestPerplexity: Double?
    var bestParameters: [String: Tensor]?

    /// Clears the per-epoch sums for a new epoch.
    mutating func startEpoch() {
        batch = 0
        lossSum = 0
        counted = 0
        skipped = 0
        correct = 0
        epochSeconds = 0
    }
}
