// Every number of a training checkpoint is checked against what a real run can produce: a tampered count, sum,
// position, report or cell kind is refused at load with a message naming the field, and no tampered number can
// overflow into a trap.

import Foundation
@testable import RNNCore
import Testing

@Suite("Training: tampered training checkpoints are refused at load")
struct TrainingCheckpointTamperingTests {
    @Test("Every tampered number is refused with a message naming it", arguments: TrainingCheckpointTampering.allCases)
    func tampered(_ tampering: TrainingCheckpointTampering) throws {
        let scratch = try ModelIOScratchDirectory()
        var file = try TrainingCheckpointTests.goodFile(in: scratch)
        try tampering.apply(to: &file)
        let url = scratch.file("tampered.safetensors")
        try file.write(to: url)
        let error = #expect(throws: CheckpointError.self) { try TrainingCheckpoint.load(from: url) }
        if let error {
            #expect(tampering.accepts(error), "\(tampering): unexpected \(error)")
        }
        #expect(throws: CheckpointError.self) { try Trainer(resumingFrom: url) }
        #expect(throws: CheckpointError.self) { try RNNLanguageModel.load(from: url) }
    }

    @Test("A diverged run's huge but possible mean loss loads; a sum no float32 logits can give does not")
    func meanLossBound() throws {
        let scratch = try ModelIOScratchDirectory()
        var file = try TrainingCheckpointTests.goodFile(in: scratch)
        // A token's loss is at most (max − z) + log V ≤ 2 · 3.4e38 + log 12: a diverged run gets there, and its
        // perplexity is infinite, so the reader must take it.
        let possible = 2 * Double(Float.greatestFiniteMagnitude)
        try TrainingCheckpointTampering.editJSON(&file, "progress") { $0["lossSum"] = possible * Double($0["countedBatches"] as! Int) }
        let checkpoint = try TrainingCheckpoint(file: file)
        #expect(exp(checkpoint.run.lossSum / Double(checkpoint.run.counted)) == .infinity)
        try TrainingCheckpointTampering.editJSON(&file, "progress") { $0["lossSum"] = 1.01 * possible * Double($0["countedBatches"] as! Int) }
        #expect(throws: CheckpointError.self) { try TrainingCheckpoint(file: file) }
    }

    @Test("A diverged run (a finite mean loss of 1e38 nats per token) is saved and resumed")
    func divergedSumsRoundTrip() throws {
        let scratch = try ModelIOScratchDirectory()
        let setup = ResumeFixture.Setup(name: "", stops: [])
        let trainer = try ResumeFixture.freshTrainer(setup)
        try ResumeFixture.train(trainer, setup) { trainer.step == 30 }
        trainer.run.lossSum = 1e38 * Double(trainer.run.counted)
        let url = scratch.file("run.safetensors")
        try trainer.saveTrainingState(to: url, vocabulary: ResumeFixture.corpus.vocabulary)
        let resumed = try Trainer(resumingFrom: url)
        #expect(resumed.run.lossSum == trainer.run.lossSum && resumed.step == 30)
    }
}

/// One way to tamper with a number of the good checkpoint of ``TrainingCheckpointTests/goodFile(in:)``: Adam, V 12,
/// D 6, H 7, one rnn layer, N 4, T 5, 104 batches an epoch of 3, stopped at epoch 2, batch 46 (step 150), with a
/// validation text and the best weights of epoch 1.
enum TrainingCheckpointTampering: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case lossSumHuge, lossSumInfinite, lossSumNegative, lossSumWithoutUpdates
    case countsHuge, countedNegative, correctAboveTokens, correctNegative
    case stepNegative, stepHuge, epochHuge, epochZero, batchNegative
    case epochsHuge, batchSizeOverflow, tokenCountHuge, timeIndexPastText
    case epochSecondsNegative, elapsedInfinite, epochLongerThanRun
    case reportPerplexityBelowOne, reportValidNaN, reportValidMissing, reportLearningRateNegative
    case reportSecondsInfinite, reportSkippedTooMany, reportAccuracyAboveOne
    case bestNotTheBest, bestWithoutReports
    case adamSecondMomentNegative
    case cellKindNamedOther, cellKindShapedOther

    var testDescription: String { rawValue }

    static func editJSON(_ file: inout SafeTensorsFile, _ key: String, _ edit: (inout [String: Any]) -> Void) throws {
        let text = try #require(file.metadata[key])
        var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        edit(&object)
        file.metadata[key] = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Edits the object `part` (`"model"`, `"training"`, `"optimizer"`) of the settings record.
    static func editSettings(_ file: inout SafeTensorsFile, _ part: String, _ edit: (inout [String: Any]) -> Void) throws {
        try editJSON(&file, "settings") { settings in
            var object = settings[part] as! [String: Any]
            edit(&object)
            settings[part] = object
        }
    }

    func apply(to file: inout SafeTensorsFile) throws {
        func progress(_ edit: (inout [String: Any]) -> Void) throws { try Self.editJSON(&file, "progress", edit) }
        func report(_ edit: @escaping (inout [String: Any]) -> Void) throws {
            try progress { p in
                var reports = p["reports"] as! [[String: Any]]
                edit(&reports[0])
                p["reports"] = reports
            }
        }
        switch self {
        case .lossSumHuge: try progress { $0["lossSum"] = 1e308 }
        case .lossSumInfinite: try progress { $0["lossSum"] = "Infinity" }
        case .lossSumNegative: try progress { $0["lossSum"] = -1.0 }
        case .lossSumWithoutUpdates:
            try progress { $0["countedBatches"] = 0; $0["skippedBatches"] = 46; $0["correctPredictions"] = 0 }
        case .countsHuge: try progress { $0["countedBatches"] = Int.max; $0["skippedBatches"] = Int.min + 47 }
        case .countedNegative: try progress { $0["countedBatches"] = -1; $0["skippedBatches"] = 47 }
        case .correctAboveTokens: try progress { $0["correctPredictions"] = 46 * 20 + 1 }
        case .correctNegative: try progress { $0["correctPredictions"] = -5 }
        case .stepNegative: try progress { $0["step"] = -1 }
        case .stepHuge: try progress { $0["step"] = Int.max }
        case .epochHuge: try progress { $0["epoch"] = Int.max }
        case .epochZero: try progress { $0["epoch"] = 0 }
        case .batchNegative: try progress { $0["batch"] = -1 }
        case .epochsHuge: try Self.editSettings(&file, "training") { $0["epochs"] = Int.max }
        case .batchSizeOverflow: try Self.editSettings(&file, "training") { $0["batchSize"] = Int.max / 2 }
        case .tokenCountHuge:
            try Self.editJSON(&file, "data") { data in
                var train = data["train"] as! [String: Any]
                train["tokenCount"] = Int.max
                data["train"] = train
            }
        case .timeIndexPastText: try progress { $0["timeIndex"] = 2_100 + 5 }
        case .epochSecondsNegative: try progress { $0["epochSeconds"] = -1.0 }
        case .elapsedInfinite: try progress { $0["elapsedSeconds"] = "Infinity" }
        case .epochLongerThanRun: try progress { $0["epochSeconds"] = ($0["elapsedSeconds"] as! Double) + 10 }
        case .reportPerplexityBelowOne: try report { $0["trainPerplexity"] = 0.5 }
        case .reportValidNaN: try report { $0["validPerplexity"] = "NaN" }
        case .reportValidMissing: try report { $0["validPerplexity"] = nil }
        case .reportLearningRateNegative: try report { $0["learningRate"] = -0.1 }
        case .reportSecondsInfinite: try report { $0["seconds"] = "Infinity" }
        case .reportSkippedTooMany: try report { $0["skippedUpdates"] = 105 }
        case .reportAccuracyAboveOne: try report { $0["trainAccuracy"] = 1.5 }
        case .bestNotTheBest: try progress { $0["bestValidPerplexity"] = ($0["bestValidPerplexity"] as! Double) + 1 }
        case .bestWithoutReports:
            try report { $0["validPerplexity"] = "Infinity" }  // a report whose perplexity cannot be the best
        case .adamSecondMomentNegative:
            let tensor = try #require(file.tensors["optimizer/v/rnn.0.b"])
            var values = try #require(tensor.floats)
            values[2] = -1e-3
            file.tensors["optimizer/v/rnn.0.b"] = NamedTensor(shape: tensor.shape, values: values)
        case .cellKindNamedOther: try Self.editSettings(&file, "model") { $0["cell"] = "lstm" }
        case .cellKindShapedOther:
            // Rename the rnn's weights as an lstm's, and say lstm: the shapes still give the rnn away.
            try Self.editSettings(&file, "model") { $0["cell"] = "lstm" }
            for name in file.tensors.keys where name.contains("/rnn.0.") && !name.hasPrefix("state/") {
                file.tensors[name.replacingOccurrences(of: "/rnn.0.", with: "/lstm.0.")] = file.tensors.removeValue(forKey: name)
            }
        }
    }

    func accepts(_ error: CheckpointError) -> Bool {
        func metadata(_ words: String...) -> Bool {
            guard case .invalidMetadata(let reason) = error else { return false }
            return words.allSatisfy { reason.contains($0) }
        }
        switch self {
        case .lossSumHuge: return metadata("progress is inconsistent", "loss sum 1e+308", "more than float32 logits can give")
        case .lossSumInfinite: return metadata("progress is inconsistent", "loss sum inf", "not a finite non-negative number")
        case .lossSumNegative: return metadata("progress is inconsistent", "loss sum -1.0", "not a finite non-negative number")
        case .lossSumWithoutUpdates: return metadata("progress is inconsistent", "without any applied update")
        case .countsHuge, .countedNegative: return metadata("progress is inconsistent", "do not add up to 46 batches")
        case .correctAboveTokens: return metadata("progress is inconsistent", "921 correct predictions out of 920")
        case .correctNegative: return metadata("progress is inconsistent", "-5 correct predictions")
        case .stepNegative: return metadata("progress is inconsistent", "step -1")
        case .stepHuge: return metadata("progress is inconsistent", "step \(Int.max)")
        case .epochHuge: return metadata("progress is inconsistent", "epoch \(Int.max) outside 1...4")
        case .epochZero: return metadata("progress is inconsistent", "epoch 0 outside 1...4")
        case .batchNegative: return metadata("progress is inconsistent", "batch -1 outside an epoch of 104 batches")
        case .epochsHuge: return metadata("settings are inconsistent", "epochs of 104 batches overflow the step count")
        case .batchSizeOverflow: return metadata("settings are inconsistent", "overflows")
        case .tokenCountHuge: return metadata("progress is inconsistent", "step 150 is not batch 46 of epoch 2")
        case .timeIndexPastText: return metadata("progress is inconsistent", "time index 2105")
        case .epochSecondsNegative, .elapsedInfinite, .epochLongerThanRun:
            return metadata("progress is inconsistent", "epoch seconds", "elapsed seconds")
        case .reportPerplexityBelowOne: return metadata("progress is inconsistent", "report of epoch 1", "training perplexity 0.5")
        case .reportValidNaN: return metadata("progress is inconsistent", "report of epoch 1", "validation perplexity nan")
        case .reportValidMissing: return metadata("progress is inconsistent", "no validation perplexity but the run has a validation text")
        case .reportLearningRateNegative: return metadata("progress is inconsistent", "learning rate -0.1")
        case .reportSecondsInfinite: return metadata("progress is inconsistent", "inf seconds")
        case .reportSkippedTooMany: return metadata("progress is inconsistent", "105 skipped updates")
        case .reportAccuracyAboveOne: return metadata("progress is inconsistent", "training accuracy 1.5")
        case .bestNotTheBest: return metadata("progress is inconsistent", "is not the best of the epoch reports")
        case .bestWithoutReports: return metadata("progress is inconsistent", "is not the best of the epoch reports (none)")
        case .adamSecondMomentNegative:
            guard case .invalidEntry(let name, let reason) = error else { return false }
            return name == "optimizer/v/rnn.0.b" && reason.contains("negative")
        case .cellKindNamedOther: return metadata("the cell is lstm", "weights of an rnn", "another cell kind")
        case .cellKindShapedOther: return metadata("the cell is lstm", "model/lstm.0.wh", "[7, 7]", "an rnn cell's weights")
        }
    }
}
