// The JSON documents in the `__metadata__` of a training checkpoint (see TrainingCheckpoint), and the coders that
// read and write them.

import Foundation

/// What the optimizer changes as it runs (its kind and hyper-parameters are in the settings): the learning rate
/// after decay, and Adam's step count (absent for SGD).
struct OptimizerStateRecord: Codable, Sendable {
    var learningRate: Double
    var stepCount: Int64?

    enum CodingKeys: String, CodingKey { case learningRate, stepCount }

    init(learningRate: Double, stepCount: Int64?) {
        self.learningRate = learningRate
        self.stepCount = stepCount
    }

    /// Every key required (`null` for SGD's step count).
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        stepCount = try c.decode(Int64?.self, forKey: .stepCount)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(stepCount, forKey: .stepCount)
    }
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
