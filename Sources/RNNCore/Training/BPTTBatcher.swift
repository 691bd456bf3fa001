/// The textbook's truncated-BPTT batching: N streams read the corpus at evenly spaced offsets, T steps at a time.
///
/// With inputs `x = ids[0..<L-1]` and targets `y = ids[1..<L]` (size S = L − 1), stream n starts at offset
/// `n · (S / N)`; batch k holds, for each stream, the T positions `offset_n + k·T + t` (modulo S, so the streams
/// wrap around the corpus). Consecutive batches continue each stream, so the model's hidden state carries over
/// from one batch to the next while gradients stop at the window's edge. One epoch is `S / (N·T)` batches; the
/// position is kept across epochs, exactly as the classic RNNLM trainer does.
public struct BPTTBatcher: Sendable {
    /// N, the number of streams.
    public let batchSize: Int
    /// T, the number of steps in one window.
    public let bptt: Int
    /// The start of each stream in the corpus.
    public let offsets: [Int]
    /// Batches in one epoch: ⌊S / (N·T)⌋.
    public let batchesPerEpoch: Int
    /// How many time steps every stream has advanced since the start (saved in checkpoints to resume).
    public var timeIndex: Int
    /// The streams this batcher yields: all N, or one rank's share of them in data-parallel training.
    public let streams: Range<Int>

    private let ids: [Int32]

    /// Prepares batching over `ids`.
    /// - Parameters:
    ///   - ids: the token ids of the text, L of them.
    ///   - batchSize: N, the number of streams.
    ///   - bptt: T, the steps of one window.
    ///   - timeIndex: the position to start from (``timeIndex`` of a batcher saved earlier; 0 for the start).
    ///   - streams: the streams to yield (default: all N); the offsets are those of all N streams, so the
    ///     batchers of K ranks with disjoint ranges together yield exactly the windows of one batcher over all N.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` when N·T exceeds the number of predictions L − 1, or for a
    ///   range of streams outside 0..<N.
    public init(ids: [Int32], batchSize: Int, bptt: Int, timeIndex: Int = 0,
                streams: Range<Int>? = nil) throws(RNNCoreError) {
        guard batchSize >= 1, bptt >= 1 else {
            throw .invalidArgument("batch size (\(batchSize)) and bptt (\(bptt)) must be at least 1")
        }
        let size = ids.count - 1
        guard size >= batchSize * bptt else {
            throw .invalidArgument("the training text has \(max(ids.count, 0)) tokens, too few for batch \(batchSize) × bptt \(bptt) (needs at least \(batchSize * bptt + 1))")
        }
        guard timeIndex >= 0 else { throw .invalidArgument("negative time index \(timeIndex)") }
        let streams = streams ?? 0..<batchSize
        guard !streams.isEmpty, streams.lowerBound >= 0, streams.upperBound <= batchSize else {
            throw .invalidArgument("streams \(streams) are not a part of the \(batchSize) streams")
        }
        self.streams = streams
        self.ids = ids
        self.batchSize = batchSize
        self.bptt = bptt
        let jump = size / batchSize
        self.offsets = (0..<batchSize).map { $0 * jump }
        self.batchesPerEpoch = size / (batchSize * bptt)
        self.timeIndex = timeIndex
    }

    /// The next window: inputs and targets, n·T each in batch-major order (`[n*T + t]`) for the n streams of
    /// ``streams``.
    public mutating func next() -> (inputs: [Int32], targets: [Int32]) {
        var inputs: [Int32] = []
        var targets: [Int32] = []
        next(inputs: &inputs, targets: &targets)
        return (inputs, targets)
    }

    /// Writes the next window into `inputs` and `targets` (n·T each, batch-major, n = `streams.count`), reusing
    /// their storage.
    public mutating func next(inputs: inout [Int32], targets: inout [Int32]) {
        let size = ids.count - 1
        let count = streams.count * bptt
        if inputs.count != count { inputs = [Int32](repeating: 0, count: count) }
        if targets.count != count { targets = [Int32](repeating: 0, count: count) }
        ids.withUnsafeBufferPointer { source in
            inputs.withUnsafeMutableBufferPointer { x in
                targets.withUnsafeMutableBufferPointer { y in
                    for (n, offset) in offsets[streams].enumerated() {
                        for t in 0..<bptt {
                            let position = (offset + timeIndex + t) % size
                            x[n * bptt + t] = source[position]
                            y[n * bptt + t] = source[position + 1]
                        }
                    }
                }
            }
        }
        timeIndex = (timeIndex + bptt) % size
    }
}
