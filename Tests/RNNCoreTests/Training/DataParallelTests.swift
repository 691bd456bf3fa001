// Data-parallel training (Trainer.communicator) with K ranks as threads of this process: the same run as one
// process, identical weights on every rank, the errors of a batch that does not divide and of texts that differ.
//
// Tolerance of K ranks against one process: the ranks average K local mean gradients where one process takes
// one mean over all N streams, and a rank's GEMMs run over N/K rows instead of N, so each step's gradient differs
// by a few float32 roundings (~1e-7 relative). Training amplifies such differences only mildly over the 60 steps
// here (small model, clipped SGD/Adam steps), so the test perplexity and every weight must agree to 1e-4
// relative (observed: perplexities within 7e-8 relative, K = 2 and 4, every cell); a wrong share of streams, a
// missing 1/K or a mask drawn for the wrong streams moves them by 1e-2 or more (the masks: 3e-2, checked). The ranks among themselves agree bit for bit (same reduced bits).

import Foundation
@testable import RNNCore
import Testing

/// K threads of one process as a communicator group: each collective waits for every rank, then each rank sums
/// the deposited buffers in rank order, so every rank gets the same bits.
final class ThreadGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var slots: [[UInt8]]
    private var arrived = 0
    private var generation = 0

    init(size: Int) {
        self.size = size
        slots = Array(repeating: [], count: size)
    }

    /// Deposits `bytes` as rank `rank`'s and returns every rank's, once all have arrived.
    func exchange(_ bytes: [UInt8], rank: Int) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        // Wait until the previous exchange has been read by everyone.
        slots[rank] = bytes
        arrived += 1
        let mine = generation
        if arrived == size {
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        let all = slots
        // A second barrier, so that no rank overwrites a slot another has not read yet.
        arrived += 1
        if arrived == 2 * size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            let next = generation
            while generation == next { condition.wait() }
        }
        return all
    }

    /// The communicator of one rank.
    func communicator(rank: Int) -> ThreadCommunicator { ThreadCommunicator(group: self, rank: rank) }
}

final class ThreadCommunicator: Communicator {
    let group: ThreadGroup
    let rank: Int
    var size: Int { group.size }
    init(group: ThreadGroup, rank: Int) { (self.group, self.rank) = (group, rank) }

    private func sum<T: BinaryFloatingPoint>(_ values: UnsafeMutableBufferPointer<T>) {
        let all = group.exchange(Array(UnsafeRawBufferPointer(values)), rank: rank)
        for i in values.indices { values[i] = 0 }
        for bytes in all {
            bytes.withUnsafeBytes { raw in
                let theirs = raw.bindMemory(to: T.self)
                for i in values.indices { values[i] += theirs[i] }
            }
        }
    }

    func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws(CommunicatorError) { sum(values) }
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws(CommunicatorError) { sum(values) }
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws(CommunicatorError) {
        let all = group.exchange(Array(UnsafeRawBufferPointer(bytes)), rank: rank)
        all[root].withUnsafeBytes { bytes.copyMemory(from: $0) }
    }
}

@Suite("Training: data-parallel ranks")
struct DataParallelTests {
    struct Run: Sendable {
        var perplexity: Double
        var weights: [String: [Float]]
        var trainPerplexities: [Double]
    }

    static let corpus = try! ModelIOFixture.trainingCorpus()

    static func settings(cell: CellKind, dropout: Float, adam: Bool) -> TrainingSettings {
        var s = TrainingSettings()
        s.model = ModelSettings(cell: cell, layers: 2, embeddingSize: 8, hiddenSize: 8, dropout: dropout)
        s.training.batchSize = 4
        s.training.bptt = 5
        s.training.epochs = 2
        s.training.evaluationBatchSize = 3
        s.training.progressInterval = 1_000
        s.optimizer.kind = adam ? .adam : .sgd
        s.optimizer.learningRate = adam ? 0.01 : 0.5
        s.seed = 11
        return s
    }

    /// Trains the same run on K threads (K = 1: without a communicator) and returns each rank's result.
    static func train(ranks K: Int, _ settings: TrainingSettings, train: [Int32]? = nil,
                      trainOfRank: (@Sendable (Int) -> [Int32])? = nil) throws -> [Result<Run, RNNCoreError>] {
        let group = ThreadGroup(size: K)
        let results = LockedResults(count: K)
        let held = try ModelIOFixture.heldOutIDs(vocabulary: corpus.vocabulary)
        let threads = (0..<K).map { rank in
            Thread {
                do throws(RNNCoreError) {
                    let trainer = try Trainer(settings: settings, vocabularySize: corpus.vocabulary.count)
                    let communicator = K > 1 ? group.communicator(rank: rank) : nil
                    trainer.communicator = communicator
                    let ids = trainOfRank?(rank) ?? train ?? corpus.ids
                    let reports = try trainer.train(on: ids, validation: held)
                    let perplexity = try trainer.model.perplexity(on: held, batchSize: 3, bptt: 5,
                                                                  communicator: communicator)
                    results.set(rank, .success(Run(perplexity: perplexity,
                                                   weights: trainer.model.namedTensors.mapValues(\.scalars),
                                                   trainPerplexities: reports.map(\.trainPerplexity))))
                } catch {
                    results.set(rank, .failure(error))
                }
            }
        }
        threads.forEach { $0.stackSize = 8 << 20; $0.start() }
        try results.wait(timeout: 120)
        return results.values
    }

    final class LockedResults: @unchecked Sendable {
        private let condition = NSCondition()
        private var slots: [Result<Run, RNNCoreError>?]
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ rank: Int, _ result: Result<Run, RNNCoreError>) {
            condition.lock()
            slots[rank] = result
            condition.broadcast()
            condition.unlock()
        }
        func wait(timeout: TimeInterval) throws {
            let deadline = Date().addingTimeInterval(timeout)
            condition.lock()
            defer { condition.unlock() }
            while slots.contains(where: { $0 == nil }) {
                guard condition.wait(until: deadline) else { throw RNNCoreError.invalidState("ranks did not finish in \(timeout) s") }
            }
        }
        var values: [Result<Run, RNNCoreError>] {
            condition.lock()
            defer { condition.unlock() }
            return slots.map { $0! }
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var cell: CellKind, dropout: Float, adam: Bool
        var testDescription: String { "\(cell.rawValue)\(dropout > 0 ? ", dropout \(dropout)" : "")\(adam ? ", Adam" : ", SGD")" }
    }

    @Test("K ranks train the model one process trains", arguments: [
        Case(cell: .lstm, dropout: 0.3, adam: true), Case(cell: .rnn, dropout: 0, adam: false),
        Case(cell: .gru, dropout: 0.2, adam: false),
    ])
    func ranksMatchOneProcess(_ c: Case) throws {
        let settings = Self.settings(cell: c.cell, dropout: c.dropout, adam: c.adam)
        let single = try Self.train(ranks: 1, settings)[0].get()
        for K in [2, 4] {
            let runs = try Self.train(ranks: K, settings).map { try $0.get() }
            // Every rank holds the very same weights and reports the same numbers.
            for run in runs.dropFirst() {
                #expect(run.weights == runs[0].weights, "rank weights differ (K = \(K))")
                #expect(run.perplexity.bitPattern == runs[0].perplexity.bitPattern)
                #expect(run.trainPerplexities == runs[0].trainPerplexities)
            }
            let tolerance = NumericsTolerance(absolute: 0, relative: 1e-4)
            expectApproximatelyEqual(runs[0].perplexity, single.perplexity, tolerance: tolerance, "K = \(K) test perplexity")
            for (a, b) in zip(runs[0].trainPerplexities, single.trainPerplexities) {
                expectApproximatelyEqual(a, b, tolerance: tolerance, "K = \(K) train perplexity")
            }
            for (name, values) in single.weights {
                let theirs = try #require(runs[0].weights[name])
                expectApproximatelyEqual(theirs.map(Double.init), values.map(Double.init),
                                         tolerance: NumericsTolerance(absolute: 1e-5, relative: 1e-4), "K = \(K) \(name)")
            }
        }
    }

    @Test("A batch that K does not divide, and texts that differ between ranks, are one clear error on every rank")
    func badSettingsAreRefused() throws {
        var settings = Self.settings(cell: .rnn, dropout: 0, adam: false)
        settings.training.batchSize = 3
        for result in try Self.train(ranks: 2, settings) {
            let error = #expect(throws: RNNCoreError.self) { try result.get() }
            #expect("\(error.map(String.init(describing:)) ?? "")".contains("cannot be shared by 2 ranks"))
        }
        settings.training.batchSize = 4
        let ids = Self.corpus.ids
        let results = try Self.train(ranks: 2, settings) { rank in rank == 0 ? ids : Array(ids.dropLast(7)) }
        for result in results {
            let error = #expect(throws: RNNCoreError.self) { try result.get() }
            #expect("\(error.map(String.init(describing:)) ?? "")".contains("the ranks disagree on the training and validation texts"))
        }
    }

    @Test("Sharded dropout draws exactly the masks of the whole batch")
    func shardedDropoutMasksAreTheWholeBatchMasks() {
        var data = NumericsData(seed: 3)
        let x = data.tensor([6, 5, 3])  // N 6, odd per-stream count so that shards start mid-word
        var whole = DropoutSite()
        var generator = Xoshiro256StarStar(seed: 9)
        let all = whole.apply(x, probability: 0.4, generator: &generator).scalars
        let end = generator
        for (first, count) in [(0, 2), (1, 3), (3, 3), (5, 1)] {
            var site = DropoutSite()
            var g = Xoshiro256StarStar(seed: 9)
            var part = Tensor(zeros: [count, 5, 3])
            part.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = x.scalars[first * 15 + i] }
            }
            let masked = site.apply(part, probability: 0.4, generator: &g, shard: DropoutShard(first: first, total: 6))
            #expect(masked.scalars == Array(all[(first * 15)..<((first + count) * 15)]), "streams \(first)..<\(first + count)")
            #expect(g.state == end.state, "the generator ends where the whole batch's draw ends")
        }
    }
}
