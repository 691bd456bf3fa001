import Foundation
import RNNCore
import Testing

/// `Trainer.step(inputs:targets:batchSize:)`, the training step of a loop of one's own, is the step that
/// `train(on:)` runs: the same updates, its loss and gradient norm reported, the run's bookkeeping left alone.
@Suite("API: manual training steps")
struct TrainerStepTests {
    /// A repeating word-level text of a few tokens, and a small model over it.
    private func fixture(seed: UInt64 = 3) throws -> (RNNLanguageModel, [Int32]) {
        let text = String(repeating: "the cat sat on the mat . a dog ran to the log .\n", count: 12)
        let corpus = try Corpus(text: text, level: .word)
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: corpus.vocabulary.count, embeddingSize: 6, hiddenSize: 8,
                                 cell: .lstm),
            seed: seed)
        return (model, corpus.ids)
    }

    private func options(clip: Double? = 0.25, skip: Bool = false) -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 3
        options.bptt = 5
        options.epochs = 1
        options.clipNorm = clip
        options.skipNonFinite = skip
        return options
    }

    @Test func aManualLoopOverTheBatcherReachesTheWeightsOfTrain() throws {
        let (automatic, ids) = try fixture()
        let trained = Trainer(model: automatic, optimizer: Adam(learningRate: 0.01), options: options())
        let reports = try trained.train(on: ids)

        let (manual, _) = try fixture()
        let trainer = Trainer(model: manual, optimizer: Adam(learningRate: 0.01), options: options())
        var batcher = try BPTTBatcher(ids: ids, batchSize: 3, bptt: 5)
        var lossSum = 0.0
        for _ in 0..<batcher.batchesPerEpoch {
            let (inputs, targets) = batcher.next()
            let result = try trainer.step(inputs: inputs, targets: targets, batchSize: 3)
            #expect(!result.isSkipped && result.loss.isFinite && result.gradientNorm.isFinite)
            lossSum += result.loss
        }
        // The same implementation on the same machine: the same bits.
        for (a, b) in zip(automatic.parameters, manual.parameters) {
            #expect(a.name == b.name)
            #expect(a.value.scalars.map(\.bitPattern) == b.value.scalars.map(\.bitPattern), "\(a.name)")
        }
        let perplexity = exp(lossSum / Double(batcher.batchesPerEpoch))
        #expect(perplexity.bitPattern == reports[0].trainPerplexity.bitPattern)
    }

    @Test func aStepReportsTheNormBeforeClippingAndWhetherItClipped() throws {
        let (model, ids) = try fixture()
        var batcher = try BPTTBatcher(ids: ids, batchSize: 3, bptt: 5)
        let (inputs, targets) = batcher.next()

        // Without clipping the norm is measured all the same; SGD leaves the gradients as they were.
        let unclipped = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options(clip: nil))
        let free = try unclipped.step(inputs: inputs, targets: targets, batchSize: 3)
        #expect(!free.isClipped && !free.isSkipped && free.gradientNorm > 0)
        let measured = try gradientNorm(model.parameters)
        #expect(abs(measured - free.gradientNorm) <= 1e-12 + 1e-9 * measured)

        // A bound far below the norm clips.
        let (other, _) = try fixture()
        let tight = Trainer(model: other, optimizer: SGD(learningRate: 0.1), options: options(clip: 1e-6))
        let clipped = try tight.step(inputs: inputs, targets: targets, batchSize: 3)
        #expect(clipped.isClipped && clipped.gradientNorm > 1e-6)
        #expect("\(clipped)".hasPrefix("loss ") && "\(clipped)".hasSuffix("(clipped)"), "\(clipped)")
    }

    @Test func stepsLeaveTheRunsBookkeepingAlone() throws {
        let (model, ids) = try fixture()
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options())
        var batcher = try BPTTBatcher(ids: ids, batchSize: 3, bptt: 5)
        for _ in 0..<3 {
            let (inputs, targets) = batcher.next()
            try trainer.step(inputs: inputs, targets: targets, batchSize: 3)
        }
        #expect(trainer.step == 0 && trainer.batch == 0 && trainer.epoch == 1 && trainer.reports.isEmpty)
        // train(on:) still runs its whole epoch afterwards.
        let reports = try trainer.train(on: ids)
        #expect(reports.count == 1 && trainer.isFinished)
    }

    @Test func aNonFiniteLossThrowsOrIsSkipped() throws {
        let (model, ids) = try fixture()
        model.embedding.weight.value.withUnsafeMutableBufferPointer { w in
            for i in w.indices { w[i] = .nan }
        }
        var batcher = try BPTTBatcher(ids: ids, batchSize: 3, bptt: 5)
        let (inputs, targets) = batcher.next()
        let strict = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options())
        do {
            try strict.step(inputs: inputs, targets: targets, batchSize: 3)
            Issue.record("a NaN loss was applied")
        } catch let error {
            guard case let .invalidState(message) = error else { Issue.record("unexpected \(error)"); return }
            #expect(message.contains("non-finite loss in a training step"), "\(message)")
        }
        let lenient = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options(skip: true))
        let result = try lenient.step(inputs: inputs, targets: targets, batchSize: 3)
        #expect(result.isSkipped && result.loss.isNaN && !result.isClipped)
        #expect("\(result)".hasPrefix("skipped"))
    }

    @Test func aStepInsideTrainIsRefused() throws {
        let (model, ids) = try fixture()
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.1), options: options())
        var refusal: RNNCoreError?
        try trainer.train(on: ids) { _ in
            guard refusal == nil else { return }
            do throws(RNNCoreError) {
                try trainer.step(inputs: Array(ids[0..<15]), targets: Array(ids[1..<16]), batchSize: 3)
            } catch let error {
                refusal = error
            }
        }
        guard case let .invalidState(message)? = refusal else {
            Issue.record("a step ran inside train(on:): \(String(describing: refusal))")
            return
        }
        #expect(message.contains("inside train(on:)"))
    }
}
