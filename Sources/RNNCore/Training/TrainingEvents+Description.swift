import Foundation

// Readable one-line descriptions of what a trainer reports, for `print(event)` in a progress hook or a log.

extension TrainingProgress: CustomStringConvertible {
    /// `"epoch 1, batch 20/132: train perplexity 245.31, 12345 tokens/s, 3.2 s elapsed, about 41.0 s left"`.
    public var description: String {
        "epoch \(epoch), batch \(batch)/\(batchesPerEpoch): train perplexity \(format(trainPerplexity, "%.2f")), "
            + "\(format(tokensPerSecond, "%.0f")) tokens/s, \(format(elapsed, "%.1f")) s elapsed, "
            + "about \(format(remaining, "%.1f")) s left"
    }
}

extension EpochReport: CustomStringConvertible {
    /// `"epoch 1: train perplexity 245.31, validation perplexity 230.10, learning rate 0.003, 12345 tokens/s,
    /// 10.5 s"`, then the training accuracy and the skipped updates when there are any.
    public var description: String {
        var parts = ["train perplexity \(format(trainPerplexity, "%.2f"))"]
        if let validPerplexity { parts.append("validation perplexity \(format(validPerplexity, "%.2f"))") }
        if let trainAccuracy { parts.append("train accuracy \(format(trainAccuracy * 100, "%.1f"))%") }
        parts.append("learning rate \(format(Double(learningRate), "%g"))")
        parts.append("\(format(tokensPerSecond, "%.0f")) tokens/s")
        parts.append("\(format(seconds, "%.1f")) s")
        if skippedUpdates > 0 {
            parts.append("\(skippedUpdates) non-finite update\(skippedUpdates == 1 ? "" : "s") skipped")
        }
        return "epoch \(epoch): " + parts.joined(separator: ", ")
    }
}

extension TrainingEvent: CustomStringConvertible {
    /// The description of the progress or of the epoch report.
    public var description: String {
        switch self {
        case let .progress(progress): progress.description
        case let .epochEnded(report): report.description
        }
    }
}

extension StepResult: CustomStringConvertible {
    /// `"loss 5.4321, gradient norm 1.234 (clipped)"`, or `"skipped (non-finite loss or gradient norm)"`.
    public var description: String {
        if isSkipped { return "skipped (non-finite loss or gradient norm)" }
        return "loss \(format(loss, "%.4f")), gradient norm \(format(gradientNorm, "%.4g"))"
            + (isClipped ? " (clipped)" : "")
    }
}

/// `value` with a printf format, or "nan"/"inf" spelled the same on every platform.
private func format(_ value: Double, _ pattern: String) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
    return String(format: pattern, value)
}
