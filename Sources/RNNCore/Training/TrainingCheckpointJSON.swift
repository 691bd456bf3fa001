// The JSON documents in the `__metadata__` of a training checkpoint (see TrainingCheckpoint), and the coders that
// read and write them.

import Foundation

/// The optimizer: kind, learning rate after decay, Adam's hyper-parameters and step count.
struct OptimizerRecord: Codable, Sendable {
    enum Kind: String, Codable, Sendable { case sgd, adam }
    var kind: Kind
    var learningRate: Double
    var beta1: Double? = nil
    var beta2: Double? = nil
    var epsilon: Double? = nil
    var weightDecay: Double? = nil
    var stepCount: Int64? = nil
}

/// Where the run stands and what it has measured so far.
struct ProgressRecord: Codable, Sendable {
    var epoch: Int
    var batch: Int
    var step: Int
    var timeIndex: Int
    var lossSum: Double
    var countedBatches: Int
    var skippedBatches: Int
    var correctPredictions: Int
    var epochSeconds: Double
    var elapsedSeconds: Double
    var bestValidPerplexity: Double?
    var reports: [ReportRecord]
}

/// An ``EpochReport`` with its Float learning rate stored as a Double, so that it round-trips exactly.
struct ReportRecord: Codable, Sendable {
    var epoch: Int
    var trainPerplexity: Double
    var validPerplexity: Double?
    var learningRate: Double
    var tokensPerSecond: Double
    var seconds: Double
    var skippedUpdates: Int
    var trainAccuracy: Double?

    init(_ report: EpochReport) {
        epoch = report.epoch
        trainPerplexity = report.trainPerplexity
        validPerplexity = report.validPerplexity
        learningRate = Double(report.learningRate)
        tokensPerSecond = report.tokensPerSecond
        seconds = report.seconds
        skippedUpdates = report.skippedUpdates
        trainAccuracy = report.trainAccuracy
    }

    var report: EpochReport {
        EpochReport(epoch: epoch, trainPerplexity: trainPerplexity, validPerplexity: validPerplexity,
                    learningRate: Float(learningRate), tokensPerSecond: tokensPerSecond, seconds: seconds,
                    skippedUpdates: skippedUpdates, trainAccuracy: trainAccuracy)
    }
}

/// Generator states, as 64-bit words in `0x`-prefixed hexadecimal (JSON numbers cannot hold them exactly).
struct RandomRecord: Codable, Sendable {
    var dropout: [String]

    static func hex(_ word: UInt64) -> String {
        let digits = String(word, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func word(_ text: String) -> UInt64? {
        guard text.hasPrefix("0x"), text.count == 18 else { return nil }
        return UInt64(text.dropFirst(2), radix: 16)
    }
}

/// Settings of the recurrent layers that shape training but are not part of the model's configuration.
struct LayersRecord: Codable, Sendable {
    var stateful: [Bool]
    var truncation: [Int]
}

/// The fingerprints of the training and validation texts.
struct DataRecord: Codable, Sendable {
    var train: TokenFingerprint
    var valid: TokenFingerprint?
}

extension JSONEncoder {
    /// Sorted keys; NaN and infinities as strings (a run whose updates were all skipped has a NaN perplexity).
    static var trainingCheckpoint: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    func string<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }
}

extension JSONDecoder {
    /// The counterpart of ``JSONEncoder/trainingCheckpoint``.
    static var trainingCheckpoint: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}
