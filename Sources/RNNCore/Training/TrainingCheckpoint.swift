import Foundation

/// The size and SHA-256 of a token sequence (its ids as little-endian `Int32`): how a training checkpoint
/// recognises the texts its run was trained on.
public struct TokenFingerprint: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The number of tokens.
    public var tokenCount: Int
    /// The SHA-256 of the ids, 64 lowercase hexadecimal digits.
    public var sha256: String

    /// Creates a fingerprint from its parts.
    public init(tokenCount: Int, sha256: String) {
        self.tokenCount = tokenCount
        self.sha256 = sha256
    }

    /// The fingerprint of `ids`.
    public init(_ ids: [Int32]) {
        var hasher = SHA256()
        #if _endian(little)
        ids.withUnsafeBytes { hasher.update($0) }
        #else
        ids.map(\.littleEndian).withUnsafeBytes { hasher.update($0) }
        #endif
        self.init(tokenCount: ids.count, sha256: hasher.finalize().hexString)
    }

    /// "929589 tokens, SHA-256 3a0b5c…".
    public var description: String { "\(tokenCount) tokens, SHA-256 \(sha256.prefix(12))…" }
}

/// A training run saved between two batches: everything the rest of the run depends on, so that a resumed run
/// ends with the same weights and losses, bit for bit, as one that never stopped.
///
/// Written by ``Trainer/saveTrainingState(to:vocabulary:metadata:)``, read by ``load(from:)`` and turned back into a
/// trainer by ``Trainer/init(resumingFrom:)-(TrainingCheckpoint)``. The file is a safetensors file (Python's `safetensors` opens it):
///
/// | tensor | holds |
/// | --- | --- |
/// | `model/<parameter>` | every parameter of the model (`model/embedding.weight`, `model/rnn.0.wx`, …) |
/// | `optimizer/m/<parameter>`, `optimizer/v/<parameter>` | Adam's moments (after its first step) |
/// | `best/<parameter>` | the weights of the best validation perplexity so far (with `restoreBest`) |
/// | `state/<layer>.<state>` | the state carried into the next window (`state/rnn.0.h`, (N, H)) |
///
/// and `__metadata__` holds, as strings: `format` (`"rnncore-train"`), `format_version` (`"2"`), and JSON for
/// `settings` (the run's ``TrainingSettings``, resolved: model architecture, training options with the truncation,
/// optimizer and its hyper-parameters, seed, level), `vocabulary` (as in a model checkpoint; it gives V),
/// `optimizer_state` (what the optimizer changes as it runs: the learning rate after decay, Adam's step count),
/// `progress` (epoch, batch, step, the batcher's time index, the epoch's running sums, the best validation
/// perplexity, the reports of finished epochs), `random` (the dropout generator's four xoshiro256** words as
/// hexadecimal strings) and `data` (``TokenFingerprint`` of the training and validation texts). Numbers that must
/// round-trip exactly are Doubles (the decayed learning rate is stored as the Double of its Float), shortest
/// round-trip decimals (the Floats of the settings) or strings (64-bit words). Other metadata keys belong to the
/// caller.
///
/// Version 1 (RNNCore before the settings record: `configuration`, `options`, `layers` and `optimizer` documents)
/// is refused with a message saying so; it cannot be resumed by this version. Model files (``RNNLanguageModel/save(to:vocabulary:metadata:)``)
/// are another format and are not affected.
public struct TrainingCheckpoint: Sendable {
    /// The value of the `format` metadata key.
    public static let format = "rnncore-train"
    /// The value of the `format_version` metadata key this version writes and reads.
    public static let formatVersion = "2"
    /// The metadata keys the format uses; every other key belongs to the caller.
    public static let reservedMetadataKeys: Set<String> = [
        "format", "format_version", "settings", "vocabulary", "optimizer_state", "progress", "random", "data",
        // Keys of version 1, kept out of callers' hands so that an old reader never mistakes a new file's.
        "configuration", "options", "layers", "optimizer",
    ]

    /// The run's settings (resolved: epochs and learning rate set).
    public let settings: TrainingSettings
    /// The model's sizes: the settings' architecture over the vocabulary.
    public let configuration: RNNLanguageModel.Configuration
    /// The model's vocabulary.
    public let vocabulary: Vocabulary
    /// The 1-based epoch in progress (the settings' epochs + 1 when the run had finished).
    public let epoch: Int
    /// Batches done in the epoch in progress.
    public let batch: Int
    /// Batches done since the run began.
    public let step: Int
    /// The reports of the finished epochs.
    public let reports: [EpochReport]
    /// The training text the run was trained on.
    public let trainingData: TokenFingerprint
    /// The validation text evaluated after each epoch, if any.
    public let validationData: TokenFingerprint?
    /// The caller's metadata: every key of the file's `__metadata__` outside ``reservedMetadataKeys``.
    public let metadata: [String: String]

    let parameters: [String: Tensor]
    let optimizerState: OptimizerStateRecord
    let moments: [String: (m: Tensor, v: Tensor)]
    let run: RunState
    let carriedState: [String: Tensor]
    let dropoutGeneratorState: [UInt64]

    /// Reads and validates a training checkpoint.
    /// - Throws: a ``CheckpointError`` naming the first problem.
    public static func load(from url: URL) throws(CheckpointError) -> TrainingCheckpoint {
        try TrainingCheckpoint(file: SafeTensorsFile.read(from: url))
    }

    /// Throws ``CheckpointError/trainingDataMismatch(text:expected:actual:)`` unless `train` and `valid` are the
    /// texts the run was trained and validated on.
    public func verify(trainingData train: [Int32], validationData valid: [Int32]?) throws(CheckpointError) {
        let actual = TokenFingerprint(train)
        guard actual == trainingData else {
            throw .trainingDataMismatch(text: "training", expected: trainingData.description, actual: actual.description)
        }
        let actualValid = valid.map(TokenFingerprint.init)
        guard actualValid == validationData else {
            throw .trainingDataMismatch(text: "validation", expected: validationData?.description ?? "none",
                                        actual: actualValid?.description ?? "none")
        }
    }

    /// The model as it was when the checkpoint was written (the weights of that batch, not the best ones), with
    /// its truncation, carried state and dropout generator.
    public func makeModel() throws(CheckpointError) -> RNNLanguageModel {
        do {
            let model = try RNNLanguageModel(configuration: configuration, tensors: parameters)
            model.truncation = settings.training.truncation
            model.dropoutGenerator = Xoshiro256StarStar(state: dropoutGeneratorState)
            try model.restoreCarriedState(carriedState)
            return model
        } catch {
            throw .invalidMetadata(reason: "the model cannot be rebuilt: \(error)")
        }
    }

    /// The optimizer of the settings in its saved state: the decayed learning rate, Adam's step count and moments.
    func makeOptimizer() -> Optimizer {
        let optimizer = settings.optimizer.makeOptimizer()
        optimizer.learningRate = Float(optimizerState.learningRate)
        if let adam = optimizer as? Adam {
            adam.restore(stepCount: optimizerState.stepCount ?? 0, moments: moments)
        }
        return optimizer
    }
}

// MARK: - Saving and resuming

extension Trainer {
    /// Writes everything the rest of the run depends on — weights, optimizer state, data position, carried state,
    /// random state, bookkeeping, the settings record and the vocabulary — as a ``TrainingCheckpoint``, atomically
    /// (temporary file, fsync, rename: an existing file is replaced only by a complete new one).
    ///
    /// Call it between two calls of ``train(on:validation:progress:shouldStop:)``, for example after one returned
    /// because its `shouldStop` hook asked it to.
    /// - Parameters:
    ///   - url: the file to write.
    ///   - vocabulary: the vocabulary of the training text, saved with the run.
    ///   - metadata: extra `__metadata__` strings (keys outside ``TrainingCheckpoint/reservedMetadataKeys``).
    /// - Throws: ``CheckpointError/invalidEntry(name:reason:)`` when a weight or optimizer slot is NaN or infinite
    ///   (nothing is written, so a good checkpoint at `url` survives a diverged run),
    ///   ``CheckpointError/invalidMetadata(reason:)`` for a vocabulary that does not fit, an optimizer other than
    ///   SGD and Adam, a trainer that has not trained yet or is training, or a file-system error.
    ///
    /// With a ``communicator`` of several ranks this is a collective call: every rank calls it, the state each
    /// rank carries for its streams is gathered into the state of all N streams, and rank 0 alone writes the file.
    public func saveTrainingState(to url: URL, vocabulary: Vocabulary,
                                  metadata: [String: String] = [:]) throws(CheckpointError) {
        let state: [String: Tensor]
        do {
            state = try carriedStateOfAllStreams()
        } catch {
            throw .invalidMetadata(reason: "the carried state cannot be gathered from the ranks: \(error)")
        }
        guard (communicator?.rank ?? 0) == 0 else { return }
        try trainingStateFile(vocabulary: vocabulary, metadata: metadata, carriedState: state).write(to: url)
    }

    /// The contents of the file ``saveTrainingState(to:vocabulary:metadata:)`` writes.
    func trainingStateFile(vocabulary: Vocabulary, metadata extra: [String: String],
                           carriedState: [String: Tensor]? = nil) throws(CheckpointError) -> SafeTensorsFile {
        guard !isTraining else {
            throw .invalidMetadata(reason: "the training state cannot be saved while train(on:) runs; save after it returns")
        }
        guard let data else {
            throw .invalidMetadata(reason: "nothing to save: train(on:) has not run yet")
        }
        guard vocabulary.count == model.configuration.vocabularySize else {
            throw .invalidMetadata(reason: "the vocabulary has \(vocabulary.count) tokens but the model \(model.configuration.vocabularySize)")
        }
        if let key = extra.keys.sorted().first(where: TrainingCheckpoint.reservedMetadataKeys.contains) {
            throw .invalidMetadata(reason: "\"\(key)\" is reserved by the training checkpoint format")
        }
        var file = SafeTensorsFile()
        func add(_ name: String, _ tensor: Tensor) throws(CheckpointError) {
            let values = tensor.scalars
            guard values.allSatisfy(\.isFinite) else {
                throw .invalidEntry(name: name, reason: "holds NaN or infinite values; the training state was not saved")
            }
            file.tensors[name] = NamedTensor(shape: tensor.shape, values: values)
        }
        let parameters = model.parameters
        for parameter in parameters { try add("model/" + parameter.name, parameter.value) }
        for (name, tensor) in carriedState ?? model.carriedState { try add("state/" + name, tensor) }
        if let best = run.bestParameters {
            for (name, tensor) in best { try add("best/" + name, tensor) }
        }
        guard var settings else {
            throw .invalidMetadata(reason: "cannot save the state of a \(type(of: optimizer)) optimizer (SGD and Adam only)")
        }
        // The vocabulary decides the level of the run (a trainer made from a model does not know it).
        settings.level = vocabulary.level
        let state: OptimizerStateRecord
        switch optimizer {
        case let adam as Adam:
            for parameter in parameters {
                guard let moments = adam.moments[parameter.name] else { continue }
                try add("optimizer/m/" + parameter.name, moments.m)
                try add("optimizer/v/" + parameter.name, moments.v)
            }
            state = OptimizerStateRecord(learningRate: Double(adam.learningRate), stepCount: adam.stepCount)
        default:
            state = OptimizerStateRecord(learningRate: Double(optimizer.learningRate), stepCount: nil)
        }
        let progress = ProgressRecord(
            epoch: epoch, batch: run.batch, step: run.step, timeIndex: run.timeIndex, lossSum: run.lossSum,
            countedBatches: run.counted, skippedBatches: run.skipped, correctPredictions: run.correct,
            epochSeconds: run.epochSeconds, elapsedSeconds: run.elapsedSeconds,
            bestValidPerplexity: run.bestPerplexity, reports: reports.map(ReportRecord.init))
        let random = RandomRecord(dropout: model.dropoutGenerator.state.map(RandomRecord.hex))
        let encoder = JSONEncoder.trainingCheckpoint
        do {
            file.metadata = extra.merging([
                "format": TrainingCheckpoint.format,
                "format_version": TrainingCheckpoint.formatVersion,
                "settings": try encoder.string(settings),
                "vocabulary": try encoder.string(vocabulary),
                "optimizer_state": try encoder.string(state),
                "progress": try encoder.string(progress),
                "random": try encoder.string(random),
                "data": try encoder.string(DataRecord(train: data.train, valid: data.valid)),
            ]) { _, ours in ours }
        } catch {
            throw .invalidMetadata(reason: "cannot encode the training state: \(error)")
        }
        return file
    }

    /// Rebuilds the trainer of a saved run from its settings record — a new model, optimizer and trainer in exactly
    /// the saved state — so
    /// that ``train(on:validation:progress:shouldStop:)`` continues it. Pass the same texts as the saved run (the
    /// trainer checks their fingerprints; ``TrainingCheckpoint/verify(trainingData:validationData:)`` checks them
    /// beforehand with a ``CheckpointError``).
    public convenience init(resumingFrom checkpoint: TrainingCheckpoint) throws(CheckpointError) {
        let model = try checkpoint.makeModel()
        self.init(model: model, optimizer: checkpoint.makeOptimizer(), options: checkpoint.settings.training,
                  settings: checkpoint.settings)
        reports = checkpoint.reports
        run = checkpoint.run
        data = (checkpoint.trainingData, checkpoint.validationData)
    }

    /// Reads a training checkpoint and rebuilds its trainer; ``TrainingCheckpoint/load(from:)`` followed by
    /// ``init(resumingFrom:)-(TrainingCheckpoint)`` (use those to get at the vocabulary and metadata too).
    public convenience init(resumingFrom url: URL) throws(CheckpointError) {
        try self.init(resumingFrom: TrainingCheckpoint.load(from: url))
    }
}

// MARK: - Reading

extension TrainingCheckpoint {
    /// Builds a checkpoint from the parsed contents of a file, validating every field: the format, each JSON
    /// document, their consistency with each other (position against data size, reports against epoch), and every
    /// tensor's name, dtype, shape and finiteness.
    /// - Throws: a ``CheckpointError`` naming the first problem.
    public init(file: SafeTensorsFile) throws(CheckpointError) {
        let meta = file.metadata
        guard meta["format"] == Self.format else {
            throw .invalidMetadata(reason: "not an RNNCore training checkpoint (format is \(meta["format"].map { "\"\($0)\"" } ?? "missing"), expected \"\(Self.format)\"\(meta["format"] == RNNLanguageModel.checkpointFormat ? ": this is a trained model, which has no training state to resume" : ""))")
        }
        guard meta["format_version"] == Self.formatVersion else {
            if meta["format_version"] == "1" {
                throw .invalidMetadata(reason: "this training checkpoint has format version 1: it was written by an older RNNCore and cannot be resumed by this one, which reads version \(Self.formatVersion) (start the run again; model files written with rnncore train --out are not affected)")
            }
            throw .invalidMetadata(reason: "training checkpoint format version \(meta["format_version"].map { ErrorText.quoted($0) } ?? "missing") is not supported (this build reads \(Self.formatVersion))")
        }
        /// "the settings are", "the optimizer state is": the subject of a message about a metadata key.
        func subject(_ key: String) -> String {
            let name = key.replacingOccurrences(of: "_", with: " ")
            return key == "settings" ? "the settings are" : "the \(name) is"
        }
        func decode<T: Decodable>(_ type: T.Type, _ key: String) throws(CheckpointError) -> T {
            do {
                return try JSONDecoder.trainingCheckpoint.decode(T.self, from: Data((meta[key] ?? "").utf8))
            } catch {
                throw .invalidMetadata(reason: "\(subject(key)) missing or malformed: \(CheckpointError.explain(error))")
            }
        }
        func require(_ condition: Bool, _ key: String, _ reason: @autoclosure () -> String) throws(CheckpointError) {
            if !condition { throw .invalidMetadata(reason: "\(subject(key)) inconsistent: \(reason())") }
        }

        // The settings decode strictly: every field present and in range (TrainingSettings.init(from:)).
        settings = try decode(TrainingSettings.self, "settings")
        try require(settings.isResolved, "settings",
                    "the epochs and the learning rate must be set (a checkpoint stores resolved settings)")
        let o = settings.training
        let epochs = o.resolvedEpochs
        vocabulary = try decode(Vocabulary.self, "vocabulary")
        try require(vocabulary.level == settings.level, "vocabulary",
                    "it is a \(vocabulary.level.rawValue)-level vocabulary but the settings say \(settings.level.rawValue)")
        configuration = settings.model.configuration(vocabularySize: vocabulary.count)
        do {
            try configuration.validate()
        } catch {
            throw .invalidMetadata(reason: "the model settings are out of range: \(error)")
        }
        let (tokensPerBatch, batchOverflow) = o.batchSize.multipliedReportingOverflow(by: o.bptt)
        try require(!batchOverflow, "settings", "batch size \(o.batchSize) × bptt \(o.bptt) overflows")

        let data = try decode(DataRecord.self, "data")
        for fingerprint in [data.train] + (data.valid.map { [$0] } ?? []) {
            try require(fingerprint.sha256.count == 64 && fingerprint.sha256.allSatisfy(\.isHexDigit)
                        && fingerprint.sha256 == fingerprint.sha256.lowercased(), "data", "\"\(fingerprint.sha256)\" is not a SHA-256")
        }
        try require(data.train.tokenCount > tokensPerBatch, "data",
                    "\(data.train.tokenCount) training tokens are too few for batch \(o.batchSize) × bptt \(o.bptt)")
        try require((data.valid?.tokenCount ?? 2) >= 2, "data", "a validation text needs at least 2 tokens")
        trainingData = data.train
        validationData = data.valid

        // The position, checked against the data size: the batcher's time index is step·T modulo the text. Every
        // product below is bounded by a check before it, so that no tampered number can overflow.
        let p = try decode(ProgressRecord.self, "progress")
        let size = data.train.tokenCount - 1
        let batchesPerEpoch = size / tokensPerBatch
        let (allSteps, stepsOverflow) = epochs.multipliedReportingOverflow(by: batchesPerEpoch)
        try require(!stepsOverflow && allSteps < Int.max, "settings",
                    "\(epochs) epochs of \(batchesPerEpoch) batches overflow the step count")
        try require((1...epochs + 1).contains(p.epoch), "progress", "epoch \(p.epoch) outside 1...\(epochs + 1)")
        try require((0..<batchesPerEpoch).contains(p.batch) && (p.epoch <= epochs || p.batch == 0), "progress",
                    "batch \(p.batch) outside an epoch of \(batchesPerEpoch) batches")
        try require(p.step == (p.epoch - 1) * batchesPerEpoch + p.batch, "progress",
                    "step \(p.step) is not batch \(p.batch) of epoch \(p.epoch) with \(batchesPerEpoch) batches an epoch")
        try require(p.timeIndex == Self.product(p.step % size, o.bptt % size, modulo: size), "progress",
                    "time index \(p.timeIndex) is not where \(p.step) batches of \(o.bptt) steps lead in \(size) positions")
        try require((0...p.batch).contains(p.countedBatches) && (0...p.batch).contains(p.skippedBatches)
                    && p.countedBatches + p.skippedBatches == p.batch,
                    "progress", "\(p.countedBatches) applied and \(p.skippedBatches) skipped updates do not add up to \(p.batch) batches")
        try require(p.correctPredictions >= 0 && p.correctPredictions <= p.countedBatches * tokensPerBatch,
                    "progress", "\(p.correctPredictions) correct predictions out of \(p.countedBatches * tokensPerBatch) predicted tokens")
        try require(p.lossSum.isFinite && p.lossSum >= 0, "progress", "loss sum \(p.lossSum) is not a finite non-negative number")
        try require(p.countedBatches > 0 || p.lossSum == 0, "progress",
                    "loss sum \(p.lossSum) without any applied update")
        let largestMeanLoss = Self.largestMeanLoss(vocabularySize: configuration.vocabularySize)
        try require(p.countedBatches == 0 || p.lossSum / Double(p.countedBatches) <= largestMeanLoss, "progress",
                    "loss sum \(p.lossSum) over \(p.countedBatches) updates is a mean loss of \(p.lossSum / Double(max(p.countedBatches, 1))) nats per token, more than float32 logits can give (at most \(largestMeanLoss))")
        try require(p.epochSeconds.isFinite && p.elapsedSeconds.isFinite && p.epochSeconds >= 0
                    && p.epochSeconds <= p.elapsedSeconds, "progress",
                    "epoch seconds \(p.epochSeconds) and elapsed seconds \(p.elapsedSeconds) must be finite, with 0 ≤ epoch ≤ elapsed")
        try require(p.bestValidPerplexity.map { $0.isFinite && $0 >= 1 } ?? true, "progress",
                    "best validation perplexity \(p.bestValidPerplexity!)")
        try require(p.reports.count == p.epoch - 1 && p.reports.enumerated().allSatisfy { $0.element.epoch == $0.offset + 1 },
                    "progress", "\(p.reports.count) epoch reports for epoch \(p.epoch)")
        for r in p.reports {
            let at = "the report of epoch \(r.epoch)"
            // A perplexity is exp of a non-negative mean loss: 1 or more (infinite for a diverged epoch), NaN only for
            // the training perplexity of an epoch whose updates were all skipped.
            try require(r.trainPerplexity.isNaN || r.trainPerplexity >= 1, "progress",
                        "\(at) has training perplexity \(r.trainPerplexity), below 1")
            try require(r.validPerplexity.map { $0 >= 1 } ?? true, "progress",
                        "\(at) has validation perplexity \(r.validPerplexity!), not a number of at least 1")
            try require((r.validPerplexity != nil) == (data.valid != nil), "progress",
                        data.valid == nil ? "\(at) has a validation perplexity but the run has no validation text"
                                          : "\(at) has no validation perplexity but the run has a validation text")
            try require(r.learningRate.isFinite && r.learningRate > 0, "progress", "\(at) has learning rate \(r.learningRate)")
            try require(r.tokensPerSecond.isFinite && r.tokensPerSecond >= 0 && r.seconds.isFinite && r.seconds >= 0,
                        "progress", "\(at) has \(r.tokensPerSecond) tokens per second over \(r.seconds) seconds")
            try require((0...batchesPerEpoch).contains(r.skippedUpdates), "progress",
                        "\(at) has \(r.skippedUpdates) skipped updates, outside 0...\(batchesPerEpoch)")
            try require(r.trainAccuracy.map { (0...1).contains($0) } ?? true, "progress",
                        "\(at) has training accuracy \(r.trainAccuracy!), outside 0...1")
        }
        // The best validation perplexity is the least of the reports' (the trainer keeps the first that improves).
        let bestReported = p.reports.compactMap(\.validPerplexity).filter(\.isFinite).min()
        try require(p.bestValidPerplexity == bestReported, "progress",
                    "best validation perplexity \(p.bestValidPerplexity.map { "\($0)" } ?? "none") is not the best of the epoch reports (\(bestReported.map { "\($0)" } ?? "none"))")
        epoch = p.epoch
        batch = p.batch
        step = p.step
        reports = p.reports.map(\.report)

        optimizerState = try decode(OptimizerStateRecord.self, "optimizer_state")
        let q = optimizerState
        let isAdam = settings.optimizer.kind == .adam
        try require(q.learningRate.isFinite && q.learningRate > 0 && q.learningRate <= Double(Float.greatestFiniteMagnitude),
                    "optimizer_state", "learning rate \(q.learningRate)")
        if isAdam {
            guard let stepCount = q.stepCount else {
                throw .invalidMetadata(reason: "the optimizer state is missing or malformed: Adam needs its stepCount")
            }
            try require(stepCount >= 0, "optimizer_state", "Adam's step count \(stepCount) is negative")
        } else {
            try require(q.stepCount == nil, "optimizer_state", "SGD has no step count, got \(q.stepCount!)")
        }

        let random = try decode(RandomRecord.self, "random")
        let words = random.dropout.compactMap(RandomRecord.word)
        try require(random.dropout.count == 4 && words.count == 4 && words.contains { $0 != 0 }, "random",
                    "the dropout generator needs four 64-bit words written as 0x-prefixed hexadecimal, not all zero, got \(random.dropout)")
        dropoutGeneratorState = words

        try Self.requireCellKind(of: file, configuration)

        // Tensors: each name must be expected, F32, of the right shape and finite.
        var expected: [String: [Int]] = [:]
        for (name, shape) in configuration.parameterShapes {
            expected["model/" + name] = shape
            if isAdam {
                expected["optimizer/m/" + name] = shape
                expected["optimizer/v/" + name] = shape
            }
            expected["best/" + name] = shape
        }
        var tensors: [String: Tensor] = [:]
        for name in file.tensors.keys.sorted() {
            let shape: [Int]
            if let known = expected[name] {
                shape = known
            } else if name.hasPrefix("state/"), let actual = file.tensors[name]?.shape {
                guard actual.count == 2, actual[0] == o.batchSize else {
                    throw .invalidEntry(name: name, reason: "a carried state must have shape (N, width) with N = \(o.batchSize), got \(actual)")
                }
                shape = actual
            } else {
                throw .invalidEntry(name: name, reason: "a training checkpoint of this configuration has no tensor of that name")
            }
            let values = try file.floats(named: name, shape: shape)
            guard values.allSatisfy(\.isFinite) else { throw .invalidEntry(name: name, reason: "holds NaN or infinite values") }
            if name.hasPrefix("optimizer/v/"), values.contains(where: { $0 < 0 }) {
                throw .invalidEntry(name: name, reason: "holds negative values, but Adam's second moments are averages of squares")
            }
            tensors[name] = try? Tensor(shape: shape, scalars: values)
        }
        func group(_ prefix: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(prefix) }
                .map { (String($0.key.dropFirst(prefix.count)), $0.value) })
        }
        let names = configuration.parameterShapes.map(\.name)
        let model = group("model/")
        if let missing = names.first(where: { model[$0] == nil }) { throw .missingTensor(name: "model/" + missing) }
        parameters = model

        let (m, v) = (group("optimizer/m/"), group("optimizer/v/"))
        if isAdam, (q.stepCount ?? 0) > 0 || !m.isEmpty || !v.isEmpty {
            // Adam creates every moment at its first step: all or (before any step) none.
            for name in names {
                if m[name] == nil { throw .missingTensor(name: "optimizer/m/" + name) }
                if v[name] == nil { throw .missingTensor(name: "optimizer/v/" + name) }
            }
        }
        moments = Dictionary(uniqueKeysWithValues: m.map { ($0.key, (m: $0.value, v: v[$0.key]!)) })

        let best = group("best/")
        if o.restoreBest && p.bestValidPerplexity != nil {
            if let missing = names.first(where: { best[$0] == nil }) { throw .missingTensor(name: "best/" + missing) }
        } else if let extra = best.keys.sorted().first {
            throw .invalidEntry(name: "best/" + extra, reason: "best weights without restoreBest and a best validation perplexity")
        }

        carriedState = group("state/")
        run = RunState(batch: p.batch, step: p.step, timeIndex: p.timeIndex, lossSum: p.lossSum,
                       counted: p.countedBatches, skipped: p.skippedBatches, correct: p.correctPredictions,
                       epochSeconds: p.epochSeconds, elapsedSeconds: p.elapsedSeconds,
                       bestPerplexity: p.bestValidPerplexity, bestParameters: best.isEmpty ? nil : best)
        metadata = meta.filter { !Self.reservedMetadataKeys.contains($0.key) }

        // The carried state must fit the model: build it once now, so that resuming cannot fail later.
        _ = try makeModel()
    }
}
