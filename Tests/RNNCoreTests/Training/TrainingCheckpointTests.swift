// Reading a training checkpoint validates every field as carefully as the model checkpoint loader does: each way to
// spoil a good file is reported with a typed CheckpointError that names the problem.

import Foundation
import RNNCore
import Testing

@Suite("Training: damaged training checkpoints are refused precisely")
struct TrainingCheckpointTests {
    /// A valid training checkpoint of a 1-layer Adam run (V 12, D 6, H 7, N 4, T 5) stopped in its second epoch, so
    /// that it holds parameters, Adam's moments, best weights, carried state and one epoch report.
    static func goodFile(in scratch: ModelIOScratchDirectory) throws -> SafeTensorsFile {
        let setup = ResumeFixture.Setup(name: "", stops: [])
        let trainer = try ResumeFixture.freshTrainer(setup)
        try ResumeFixture.train(trainer, setup) { trainer.step == 150 }
        let url = scratch.file("good.safetensors")
        try trainer.saveTrainingState(to: url, vocabulary: ResumeFixture.corpus.vocabulary)
        return try SafeTensorsFile.read(from: url)
    }

    @Test("Every corruption of a good training checkpoint is reported precisely", arguments: TrainingCheckpointCorruption.allCases)
    func corruptCheckpoint(_ corruption: TrainingCheckpointCorruption) throws {
        let scratch = try ModelIOScratchDirectory()
        var file = try Self.goodFile(in: scratch)
        let good = try TrainingCheckpoint(file: file)  // the unedited file is fine
        #expect(good.epoch == 2 && good.batch == 46)
        try corruption.apply(to: &file, in: scratch)
        let url = scratch.file("corrupt.safetensors")
        try file.write(to: url)
        let error = #expect(throws: CheckpointError.self) { try TrainingCheckpoint.load(from: url) }
        if let error {
            #expect(corruption.accepts(error), "\(corruption): unexpected \(error)")
        }
        // Resuming from the file fails the same way.
        #expect(throws: CheckpointError.self) { try Trainer(resumingFrom: url) }
    }

    @Test("A trained model is not a training checkpoint, and the message says so")
    func trainedModelIsNotATrainingCheckpoint() throws {
        let scratch = try ModelIOScratchDirectory()
        let (model, vocabulary) = try ModelIOFixture.trainedModel(layers: 1)
        let url = scratch.file("model.safetensors")
        try model.save(to: url, vocabulary: vocabulary)
        let error = #expect(throws: CheckpointError.self) { try TrainingCheckpoint.load(from: url) }
        guard case .invalidMetadata(let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("not an RNNCore training checkpoint") && reason.contains("trained model"), "\(reason)")
        #expect(throws: CheckpointError.fileNotFound(path: scratch.file("absent").path)) {
            try TrainingCheckpoint.load(from: scratch.file("absent"))
        }
    }
}

/// One way to spoil the good training checkpoint of ``TrainingCheckpointTests/goodFile(in:)``.
enum TrainingCheckpointCorruption: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case formatWrong, formatVersionWrong, formatVersionOne
    case settingsMissing, vocabularyMissing, optimizerStateMissing, progressMissing
    case randomMissing, dataMissing, progressNotJSON, settingsNotJSON
    case settingsBatchZero, settingsNegativeEmbedding, settingsUnknownCell, settingsUnknownOptimizer
    case settingsUnknownLevel, settingsKeyMissing, settingsUnresolved, settingsLevelMismatch, settingsNotAnObject
    case sgdWithStepCount
    case timeIndexOff, batchBeyondEpoch, stepWrong, reportMissing, countsDoNotAddUp, lossSumNaN
    case adamWithoutStepCount, adamStepCountNull, learningRateZero, betaOne
    case randomDecimalWord, randomAllZero, randomThreeWords
    case dataHashNotHex, dataTooFewTokens
    case configurationWiderThanTensors, modelTensorMissing, modelTensorWrongShape
    case adamSlotMissing, adamSlotNaN, bestMissing, extraTensor
    case stateWrongBatchSize, stateUnknownLayer, stateInt32, stateInfinite

    var testDescription: String { rawValue }

    func apply(to file: inout SafeTensorsFile, in scratch: ModelIOScratchDirectory) throws {
        func editJSON(_ key: String, _ edit: (inout [String: Any]) -> Void) throws {
            let text = try #require(file.metadata[key])
            var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            edit(&object)
            file.metadata[key] = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        func editSettings(_ part: String, _ edit: (inout [String: Any]) -> Void) throws {
            try editJSON("settings") { settings in
                var object = settings[part] as! [String: Any]
                edit(&object)
                settings[part] = object
            }
        }
        func floats(_ name: String) throws -> (shape: [Int], values: [Float]) {
            let tensor = try #require(file.tensors[name], "no tensor \(name)")
            return (tensor.shape, try #require(tensor.floats))
        }
        switch self {
        case .formatWrong: file.metadata["format"] = "pytorch"
        case .formatVersionWrong: file.metadata["format_version"] = "3"
        case .formatVersionOne:
            // A version-1 file as RNNCore wrote it before the settings record: argv, options, layers, optimizer.
            file.metadata["format_version"] = "1"
            file.metadata["settings"] = nil
            file.metadata["configuration"] = #"{"cell":"rnn","dropout":0,"embeddingSize":6,"hiddenSize":7,"input":"embedding","layers":1,"vocabularySize":12}"#
            file.metadata["layers"] = #"{"stateful":[true],"truncation":[0]}"#
        case .settingsMissing: file.metadata["settings"] = nil
        case .vocabularyMissing: file.metadata["vocabulary"] = nil
        case .optimizerStateMissing: file.metadata["optimizer_state"] = nil
        case .progressMissing: file.metadata["progress"] = nil
        case .randomMissing: file.metadata["random"] = nil
        case .dataMissing: file.metadata["data"] = nil
        case .progressNotJSON: file.metadata["progress"] = "{\"epoch\": 2,"
        case .settingsNotJSON: file.metadata["settings"] = "{\"model\": "
        case .settingsBatchZero: try editSettings("training") { $0["batchSize"] = 0 }
        case .settingsNegativeEmbedding: try editSettings("model") { $0["embeddingSize"] = -3 }
        case .settingsUnknownCell: try editSettings("model") { $0["cell"] = "transformer" }
        case .settingsUnknownOptimizer: try editSettings("optimizer") { $0["kind"] = "rmsprop" }
        case .settingsUnknownLevel: try editJSON("settings") { $0["level"] = "syllable" }
        case .settingsKeyMissing: try editSettings("training") { $0["bptt"] = nil }
        case .settingsUnresolved: try editSettings("training") { $0["epochs"] = NSNull() }
        case .settingsLevelMismatch: try editJSON("settings") { $0["level"] = "character" }
        case .settingsNotAnObject: file.metadata["settings"] = "[1, 2]"
        case .sgdWithStepCount: try editSettings("optimizer") { $0["kind"] = "sgd" }
        case .timeIndexOff: try editJSON("progress") { $0["timeIndex"] = ($0["timeIndex"] as! Int) + 1 }
        case .batchBeyondEpoch: try editJSON("progress") { $0["batch"] = 104; $0["step"] = 208 }
        case .stepWrong: try editJSON("progress") { $0["step"] = 151 }
        case .reportMissing: try editJSON("progress") { $0["reports"] = [] }
        case .countsDoNotAddUp: try editJSON("progress") { $0["skippedBatches"] = 1 }
        case .lossSumNaN: try editJSON("progress") { $0["lossSum"] = "NaN" }
        case .adamWithoutStepCount: try editJSON("optimizer_state") { $0["stepCount"] = nil }
        case .adamStepCountNull: try editJSON("optimizer_state") { $0["stepCount"] = NSNull() }
        case .learningRateZero: try editJSON("optimizer_state") { $0["learningRate"] = 0 }
        case .betaOne: try editSettings("optimizer") { $0["beta2"] = 1 }
        case .randomDecimalWord: try editJSON("random") { $0["dropout"] = ["12345", "0x0000000000000001", "0x0000000000000002", "0x0000000000000003"] }
        case .randomAllZero: try editJSON("random") { $0["dropout"] = Array(repeating: "0x0000000000000000", count: 4) }
        case .randomThreeWords: try editJSON("random") { $0["dropout"] = Array(($0["dropout"] as! [String]).prefix(3)) }
        case .dataHashNotHex: try editJSON("data") { $0["train"] = ["tokenCount": 2100, "sha256": String(repeating: "z", count: 64)] }
        case .dataTooFewTokens:
            try editJSON("data") { data in
                var train = data["train"] as! [String: Any]
                train["tokenCount"] = 20
                data["train"] = train
            }
        case .configurationWiderThanTensors: try editSettings("model") { $0["hiddenSize"] = 8 }
        case .modelTensorMissing: file.tensors["model/rnn.0.wh"] = nil
        case .modelTensorWrongShape: file.tensors["model/output.bias"] = NamedTensor(shape: [13], values: [Float](repeating: 0, count: 13))
        case .adamSlotMissing: file.tensors["optimizer/v/rnn.0.b"] = nil
        case .adamSlotNaN:
            var (shape, values) = try floats("optimizer/m/embedding.weight")
            values[5] = .nan
            file.tensors["optimizer/m/embedding.weight"] = NamedTensor(shape: shape, values: values)
        case .bestMissing: file.tensors["best/output.weight"] = nil
        case .extraTensor: file.tensors["optimizer/z/output.bias"] = NamedTensor(shape: [12], values: [Float](repeating: 0, count: 12))
        case .stateWrongBatchSize: file.tensors["state/rnn.0.h"] = NamedTensor(shape: [3, 7], values: [Float](repeating: 0, count: 21))
        case .stateUnknownLayer: file.tensors["state/rnn.5.h"] = NamedTensor(shape: [4, 7], values: [Float](repeating: 0, count: 28))
        case .stateInt32: file.tensors["state/rnn.0.h"] = NamedTensor(shape: [4, 7], values: [Int32](repeating: 0, count: 28))
        case .stateInfinite:
            var (shape, values) = try floats("state/rnn.0.h")
            values[0] = .infinity
            file.tensors["state/rnn.0.h"] = NamedTensor(shape: shape, values: values)
        }
    }

    func accepts(_ error: CheckpointError) -> Bool {
        func metadata(_ words: String...) -> Bool {
            guard case .invalidMetadata(let reason) = error else { return false }
            return words.allSatisfy { reason.contains($0) }
        }
        func entry(_ name: String, _ words: String...) -> Bool {
            guard case .invalidEntry(let actual, let reason) = error else { return false }
            return actual == name && words.allSatisfy { reason.contains($0) }
        }
        switch self {
        case .formatWrong: return metadata("not an RNNCore training checkpoint", "pytorch")
        case .formatVersionWrong: return metadata("version \"3\" is not supported", "reads 2")
        case .formatVersionOne:
            return metadata("format version 1", "written by an older RNNCore", "cannot be resumed", "reads version 2")
        case .settingsMissing, .settingsNotJSON: return metadata("the settings are missing or malformed")
        case .settingsNotAnObject: return metadata("the settings are missing or malformed", "not of type")
        case .vocabularyMissing: return metadata("vocabulary is missing or malformed")
        case .optimizerStateMissing: return metadata("the optimizer state is missing or malformed")
        case .settingsBatchZero:
            return metadata("the settings are missing or malformed", "batchSize must be at least 1, got 0", "training.batchSize")
        case .settingsNegativeEmbedding:
            return metadata("the settings are missing or malformed", "embeddingSize must be at least 1, got -3", "model.embeddingSize")
        case .settingsUnknownCell:
            return metadata("the settings are missing or malformed", "cell \"transformer\" is not one of rnn, rnn-relu, lstm, gru", "model.cell")
        case .settingsUnknownOptimizer:
            return metadata("the settings are missing or malformed", "kind \"rmsprop\" is not one of sgd, adam", "optimizer.kind")
        case .settingsUnknownLevel:
            return metadata("the settings are missing or malformed", "level \"syllable\" is not one of word, character")
        case .settingsKeyMissing: return metadata("the settings are missing or malformed", "\"bptt\" is missing", "training")
        case .settingsUnresolved: return metadata("the settings are inconsistent", "epochs and the learning rate must be set")
        case .settingsLevelMismatch: return metadata("the vocabulary is inconsistent", "word-level vocabulary", "settings say character")
        case .sgdWithStepCount: return metadata("the optimizer state is inconsistent", "SGD has no step count")
        case .adamWithoutStepCount: return metadata("the optimizer state is missing or malformed", "stepCount")
        case .adamStepCountNull: return metadata("the optimizer state is missing or malformed", "Adam needs its stepCount")
        case .progressMissing, .progressNotJSON: return metadata("progress is missing or malformed")
        case .randomMissing: return metadata("random is missing or malformed")
        case .dataMissing: return metadata("data is missing or malformed")
        case .timeIndexOff: return metadata("progress is inconsistent", "time index")
        case .batchBeyondEpoch: return metadata("progress is inconsistent", "batch 104 outside an epoch of 104 batches")
        case .stepWrong: return metadata("progress is inconsistent", "step 151")
        case .reportMissing: return metadata("progress is inconsistent", "0 epoch reports for epoch 2")
        case .countsDoNotAddUp: return metadata("progress is inconsistent", "do not add up")
        case .lossSumNaN: return metadata("progress is inconsistent", "loss sum nan")
        case .learningRateZero: return metadata("the optimizer state is inconsistent", "learning rate 0")
        case .betaOne: return metadata("the settings are missing or malformed", "beta2 must lie in [0, 1), got 1.0", "optimizer.beta2")
        case .randomDecimalWord, .randomAllZero, .randomThreeWords: return metadata("random is inconsistent", "hexadecimal")
        case .dataHashNotHex: return metadata("data is inconsistent", "is not a SHA-256")
        case .dataTooFewTokens: return metadata("data is inconsistent", "20 training tokens are too few")
        case .configurationWiderThanTensors: return error == .shapeMismatch(name: "best/output.weight", expected: [8, 12], actual: [7, 12])
        case .modelTensorMissing: return error == .missingTensor(name: "model/rnn.0.wh")
        case .modelTensorWrongShape: return error == .shapeMismatch(name: "model/output.bias", expected: [12], actual: [13])
        case .adamSlotMissing: return error == .missingTensor(name: "optimizer/v/rnn.0.b")
        case .adamSlotNaN: return entry("optimizer/m/embedding.weight", "NaN or infinite")
        case .bestMissing: return error == .missingTensor(name: "best/output.weight")
        case .extraTensor: return entry("optimizer/z/output.bias", "no tensor of that name")
        case .stateWrongBatchSize: return entry("state/rnn.0.h", "N = 4", "[3, 7]")
        case .stateUnknownLayer: return metadata("cannot be rebuilt", "rnn.5.h")
        case .stateInt32: return error == .dtypeMismatch(name: "state/rnn.0.h", expected: "F32", actual: "I32")
        case .stateInfinite: return entry("state/rnn.0.h", "NaN or infinite")
        }
    }
}
