// Truncated-BPTT batching and the Trainer: stream layout, convergence on a deterministic corpus, carried state,
// and bit-for-bit reproducibility.

import RNNCore
import Testing

@Suite("Numerics: BPTT batching and training")
struct NumericTrainingTests {
    struct BatchCase: Sendable, CustomTestStringConvertible {
        let tokens: Int, batchSize: Int, bptt: Int
        var testDescription: String { "L\(tokens) N\(batchSize) T\(bptt)" }
    }

    @Test(arguments: [
        BatchCase(tokens: 101, batchSize: 4, bptt: 5),  // S 100: offsets 0, 25, 50, 75; 5 batches an epoch
        BatchCase(tokens: 23, batchSize: 3, bptt: 4),   // S 22: offsets 0, 7, 14; 1 batch an epoch
        BatchCase(tokens: 11, batchSize: 1, bptt: 10),  // S 10 = N·T exactly
        BatchCase(tokens: 12, batchSize: 2, bptt: 3),   // S 11, odd: offsets 0, 5
        BatchCase(tokens: 8, batchSize: 7, bptt: 1),    // T 1
    ])
    func batcherStreamsReadConsecutiveWindowsAndWrapAround(_ c: BatchCase) throws {
        // Token i has id i, so every id in a batch is the corpus position it was read from.
        let ids = (0..<c.tokens).map { Int32($0) }
        let S = c.tokens - 1
        var batcher = try BPTTBatcher(ids: ids, batchSize: c.batchSize, bptt: c.bptt)
        #expect(batcher.offsets == (0..<c.batchSize).map { $0 * (S / c.batchSize) })
        #expect(batcher.batchesPerEpoch == S / (c.batchSize * c.bptt))
        #expect(batcher.timeIndex == 0)

        // Enough batches to wrap around the corpus at least twice.
        let batches = 2 * S / c.bptt + 3
        var previous: [Int32]?
        for k in 0..<batches {
            let (inputs, targets) = batcher.next()
            #expect(inputs.count == c.batchSize * c.bptt && targets.count == inputs.count)
            for n in 0..<c.batchSize {
                for t in 0..<c.bptt {
                    let position = (batcher.offsets[n] + k * c.bptt + t) % S
                    #expect(inputs[n * c.bptt + t] == Int32(position), "batch \(k) stream \(n) step \(t)")
                    #expect(targets[n * c.bptt + t] == Int32(position + 1), "target of batch \(k) stream \(n) step \(t)")
                }
                // Batch k+1 continues each stream: its first position is one past the last of batch k (mod S).
                if let previous {
                    let last = Int(previous[n * c.bptt + c.bptt - 1])
                    #expect(Int(inputs[n * c.bptt]) == (last + 1) % S, "stream \(n) continues at batch \(k)")
                }
            }
            previous = inputs
            #expect(batcher.timeIndex == ((k + 1) * c.bptt) % S)
        }

        // Resuming from a saved time index gives the same windows.
        var original = try BPTTBatcher(ids: ids, batchSize: c.batchSize, bptt: c.bptt)
        for _ in 0..<3 { _ = original.next() }
        var resumed = try BPTTBatcher(ids: ids, batchSize: c.batchSize, bptt: c.bptt, timeIndex: original.timeIndex)
        let (a, b) = (original.next(), resumed.next())
        #expect(a.inputs == b.inputs && a.targets == b.targets)
    }

    @Test func batcherRejectsTooLittleData() throws {
        let ids = (0..<20).map { Int32($0) }  // 19 predictions
        _ = try BPTTBatcher(ids: ids, batchSize: 19, bptt: 1)
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: ids, batchSize: 4, bptt: 5) }
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: ids, batchSize: 20, bptt: 1) }
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: [1], batchSize: 1, bptt: 1) }
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: [], batchSize: 1, bptt: 1) }
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: ids, batchSize: 0, bptt: 1) }
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: ids, batchSize: 1, bptt: 0) }
        expectRNNCoreError(.invalidArgument) { _ = try BPTTBatcher(ids: ids, batchSize: 1, bptt: 1, timeIndex: -1) }
    }

    // MARK: Trainer

    /// `period` repeated to `length` tokens.
    static func corpus(_ period: [Int32], length: Int) -> [Int32] {
        (0..<length).map { period[$0 % period.count] }
    }

    static func options(batchSize: Int = 4, bptt: Int = 5, epochs: Int) -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = batchSize
        options.bptt = bptt
        options.epochs = epochs
        options.clipNorm = 1
        options.learningRateDecay = 1  // these runs test learning, not the schedule: no decay on a plateau
        options.evaluationBatchSize = 2
        options.progressInterval = 1000
        return options
    }

    /// Trains a fresh model and returns the trainer.
    static func train(seed: UInt64, vocabularySize V: Int, corpus train: [Int32], validation: [Int32]?,
                      options: TrainingOptions, stateful: Bool = true) throws -> Trainer {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: V, embeddingSize: 8, hiddenSize: 16)
        let model = try RNNLanguageModel(configuration: configuration, seed: seed)
        for layer in model.network.recurrentLayers { layer.isStateful = stateful }
        let trainer = Trainer(model: model, optimizer: Adam(learningRate: 0.05), options: options)
        try trainer.train(on: train, validation: validation)
        return trainer
    }

    @Test func adamLearnsADeterministicSequence() throws {
        let period: [Int32] = [0, 1, 2, 3, 4]
        var events = 0
        let trainer = Trainer(
            model: try RNNLanguageModel(configuration: .init(vocabularySize: 5, embeddingSize: 8, hiddenSize: 16), seed: 1),
            optimizer: Adam(learningRate: 0.05), options: Self.options(epochs: 4))
        let reports = try trainer.train(on: Self.corpus(period, length: 401), validation: Self.corpus(period, length: 41)) { event in
            if case .epochEnded = event { events += 1 }
        }
        NumericsErrorLog.note("deterministic sequence: train \(reports.map(\.trainPerplexity)), valid \(reports.map(\.validPerplexity))")
        #expect(reports.count == 4 && events == 4)
        #expect(reports.map(\.epoch) == [1, 2, 3, 4])
        let first = try #require(reports.first), last = try #require(reports.last)
        // Every token is determined by the one before: perplexity goes from ~5 (uniform) to ~1.
        #expect(first.trainPerplexity < 5.5)
        // Observed with this seed: 1.35 after epoch 1, 1.00008 after epoch 4 (valid 1.0001), with OpenBLAS's
        // Haswell/Zen kernels and its SkylakeX kernels alike (their trajectories differ from the 9th digit on).
        // 1.05 (a loss of 0.049 nats, against ln 5 = 1.61 for a model that learnt nothing) leaves the excess over 1
        // a margin of 600 while still saying that the rule was learnt.
        #expect(last.trainPerplexity < 1.05, "train perplexity \(last.trainPerplexity)")
        #expect(try #require(last.validPerplexity) < 1.05, "valid perplexity \(String(describing: last.validPerplexity))")
        #expect(last.trainPerplexity < first.trainPerplexity)
    }

    /// Zaremba et al.'s schedule: from epoch `learningRateDecayStart` on the rate is divided after every epoch,
    /// improved or not; before it only on a plateau. Without a validation text there is no plateau, so the rates
    /// are fixed: 0.8 for epochs 1-3, then halved. With one, whether epoch 2 improves on epoch 1 is the run's own
    /// affair (it did here, on every OpenBLAS kernel tried), so the rates are checked against the rule applied to
    /// the validation perplexities the run reported, not against a trajectory recorded on one machine.
    @Test func learningRateDecaysEveryEpochFromTheStartEpoch() throws {
        let period: [Int32] = [0, 1, 2, 3, 4]
        var options = Self.options(epochs: 5)
        options.learningRateDecay = 2
        options.learningRateDecayStart = 3
        func trainer() throws -> Trainer {
            Trainer(model: try RNNLanguageModel(configuration: .init(vocabularySize: 5, embeddingSize: 8, hiddenSize: 16), seed: 1),
                    optimizer: SGD(learningRate: 0.8), options: options)
        }
        let unvalidated = try trainer()
        let fixed = try unvalidated.train(on: Self.corpus(period, length: 401))
        #expect(fixed.map(\.learningRate) == [0.8, 0.8, 0.8, 0.4, 0.2])
        #expect(unvalidated.optimizer.learningRate == 0.1)

        let validated = try trainer()
        let reports = try validated.train(on: Self.corpus(period, length: 401), validation: Self.corpus(period, length: 41))
        let expected = ResumeFixture.learningRates(following: reports, initial: 0.8, decay: 2, start: 3)
        #expect(reports.map(\.learningRate) == expected.perEpoch, "valid perplexities \(reports.map(\.validPerplexity))")
        #expect(validated.optimizer.learningRate == expected.final)
        // From epoch 3 on the rate halves after every epoch, plateau or not (never twice in one epoch).
        let rates = reports.map(\.learningRate)
        #expect(rates.count == 5 && rates[3] == rates[2] / 2 && rates[4] == rates[3] / 2
                && validated.optimizer.learningRate == rates[4] / 2, "\(rates)")
    }

    /// 0 1 1 2 1 1 …: after "1 1" comes 2 if the token before was 0, and 0 if it was 2, so predicting it needs the
    /// token three steps back. With windows of T = 2 a stateless model cannot always see it; a stateful one carries
    /// it in the hidden state from the previous window.
    @Test func hiddenStateCarriesAcrossWindows() throws {
        let period: [Int32] = [0, 1, 1, 2, 1, 1]
        let train = Self.corpus(period, length: 601)
        let options = Self.options(batchSize: 4, bptt: 2, epochs: 6)
        let stateful = try Self.train(seed: 2, vocabularySize: 3, corpus: train, validation: nil, options: options)
        let stateless = try Self.train(seed: 2, vocabularySize: 3, corpus: train, validation: nil, options: options,
                                       stateful: false)
        let (a, b) = (stateful.reports.last!.trainPerplexity, stateless.reports.last!.trainPerplexity)
        NumericsErrorLog.note("memory: stateful \(stateful.reports.map(\.trainPerplexity)), stateless \(stateless.reports.map(\.trainPerplexity))")
        // The floor of a stateless model, whatever the machine: the four streams start at offsets ≡ 0 (mod 6) and
        // windows advance by 2, so windows start at phases 0, 2, 4 equally often. A window's first step sees only
        // its token; at phases 2 and 4 that token is 1, followed by 2 at phase 2 and by 1 at phase 4, so one output
        // distribution must serve both and costs at least ln 2 on those 2 of every 6 predictions; every other
        // prediction is determined by the two tokens a window sees. A fixed model thus has perplexity
        // ≥ 2^(1/3) ≈ 1.26. Observed after 6 epochs (Haswell/Zen and SkylakeX kernels alike): stateful 1.0002,
        // stateless 1.28. The stateful bound 1.15 is generous (the loss excess over 0 has a margin of 600) and
        // still far below the stateless floor, which is the claim: the state carries the token three steps back.
        #expect(a < 1.15, "stateful train perplexity \(a)")
        #expect(b > 1.2, "stateless train perplexity \(b)")
        // The same holds for evaluation, which reads each stream statefully window by window: 61 tokens in windows
        // of 2 start at phases 0, 2, 4 ten times each, so the stateless model's floor 2^(1/3) is exact there.
        let text = Self.corpus(period, length: 61)
        #expect(try stateful.model.perplexity(on: text, bptt: 2) < 1.15)
        #expect(try stateless.model.perplexity(on: text, bptt: 2) > 1.25)
    }

    @Test func trainingIsBitForBitReproducible() throws {
        let period: [Int32] = [0, 1, 2, 3, 4, 2, 1]
        let train = Self.corpus(period, length: 300)
        let valid = Self.corpus(period, length: 40)
        let options = Self.options(epochs: 2)
        let a = try Self.train(seed: 9, vocabularySize: 5, corpus: train, validation: valid, options: options)
        let b = try Self.train(seed: 9, vocabularySize: 5, corpus: train, validation: valid, options: options)
        #expect(a.reports.count == b.reports.count)
        for (x, y) in zip(a.reports, b.reports) {
            #expect(x.trainPerplexity.bitPattern == y.trainPerplexity.bitPattern, "epoch \(x.epoch) train perplexity")
            #expect(x.validPerplexity?.bitPattern == y.validPerplexity?.bitPattern, "epoch \(x.epoch) valid perplexity")
        }
        let (wa, wb) = (a.model.namedTensors, b.model.namedTensors)
        #expect(wa.keys.sorted() == wb.keys.sorted())
        for (name, tensor) in wa {
            expectApproximatelyEqual(tensor, try #require(wb[name]).widenedScalars, tolerance: .exact, "\(name) after two runs")
        }
    }

    @Test func trainerRejectsBadOptions() throws {
        let model = try RNNLanguageModel(configuration: .init(vocabularySize: 5, embeddingSize: 2, hiddenSize: 3), seed: 1)
        expectRNNCoreError(.invalidArgument) {
            try Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: Self.options(epochs: 0)).train(on: [0, 1, 2])
        }
        expectRNNCoreError(.invalidArgument) {
            try Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: Self.options(epochs: 1)).train(on: [0, 1, 2])
        }
    }
}
