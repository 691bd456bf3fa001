import Testing
@testable import RNNCore

/// A training step reuses its activation buffers: after the first two windows of a shape (the RNN's state buffers
/// alternate), no tensor storage is allocated. The allocation count of a whole step, OpenBLAS included, is measured
/// by benchmarks/count-allocations.sh.
@Suite("Numerics: buffer reuse in training steps")
struct BufferReuseTests {
    /// The storage of every activation buffer (embedding output, logits, their gradients, hidden states).
    private func storages(_ model: RNNLanguageModel) -> [AnyObject] {
        model.buffers.filter { $0.count > 0 }.map(\.storageObject)
    }

    /// Weak references: a buffer that was reallocated would have been freed, and its reference gone nil.
    private final class WeakBox { weak var object: AnyObject?; init(_ o: AnyObject) { object = o } }

    @Test(arguments: [1, 2])
    func activationBuffersKeepTheirStorage(layers: Int) throws {
        let model = try RNNLanguageModel(
            configuration: .init(vocabularySize: 11, embeddingSize: 4, hiddenSize: 5, layers: layers), seed: 3)
        let parameters = model.parameters
        let sgd = SGD(learningRate: 0.1)
        var batcher = try BPTTBatcher(ids: (0..<200).map { Int32($0 % 11) }, batchSize: 3, bptt: 4)
        var inputs: [Int32] = []
        var targets: [Int32] = []
        var first: [WeakBox] = []
        var states: [[WeakBox]] = []
        for step in 0..<6 {
            batcher.next(inputs: &inputs, targets: &targets)
            parameters.zeroGradients()
            _ = try model.lossAndGradients(ids: inputs, targets: targets, batchSize: 3)
            try clipGradientNorm(parameters, maxNorm: 1)
            try sgd.step(parameters)
            if step == 0 { first = storages(model).map(WeakBox.init) }
            states.append(model.network.recurrentLayers.compactMap { $0.state?.storageObject }.map(WeakBox.init))
        }
        // Every activation buffer of step 1 is still the one in use after step 6.
        let now = storages(model)
        #expect(first.count == now.count)
        for (box, current) in zip(first, now) { #expect(box.object === current) }
        // The hidden states alternate between two buffers per layer from step 2 on.
        for l in 0..<layers {
            #expect(states[5][l].object != nil && states[5][l].object === states[3][l].object)
            #expect(states[4][l].object != nil && states[4][l].object === states[2][l].object)
        }
    }

    @Test func aReturnedLogitsTensorIsNotOverwrittenByTheNextWindow() throws {
        let model = try RNNLanguageModel(configuration: .init(vocabularySize: 7, embeddingSize: 3, hiddenSize: 4), seed: 1)
        let first = try model.logits(for: [1, 2, 3, 4], batchSize: 2)
        let snapshot = first.scalars
        _ = try model.logits(for: [5, 6, 0, 1], batchSize: 2)
        #expect(first.scalars == snapshot)
    }
}
