// The memory estimate counts what a model really allocates, and a model too large for the memory left is refused
// with a typed error before anything is allocated.

import CRNNCore
import Foundation
@testable import RNNCore
import Testing

@Suite("Memory: estimates before allocating, insufficientMemory instead of a trap")
struct MemoryEstimateTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var cell: CellKind
        var layers: Int
        var input: InputEncoding
        var dropout: Float = 0
        var truncation = 0
        var testDescription: String { "\(cell) × \(layers), \(input.rawValue), dropout \(dropout), truncation \(truncation)" }

        var configuration: RNNLanguageModel.Configuration {
            .init(vocabularySize: 13, embeddingSize: 5, hiddenSize: 6, layers: layers, cell: cell, dropout: dropout,
                  input: input)
        }
    }

    static let cases: [Case] = [
        Case(cell: .rnn, layers: 1, input: .embedding),
        Case(cell: .rnn, layers: 2, input: .oneHot, dropout: 0.3),
        Case(cell: .lstm, layers: 1, input: .oneHot),
        Case(cell: .lstm, layers: 2, input: .embedding, dropout: 0.2, truncation: 2),
        Case(cell: .rnn, layers: 2, input: .embedding, truncation: 3),
        Case(cell: .gru, layers: 2, input: .embedding, dropout: 0.2, truncation: 2),
        Case(cell: .gru, layers: 1, input: .oneHot),
        Case(cell: .rnnRelu, layers: 2, input: .embedding, truncation: 3),
    ]

    @Test("Parameter bytes are exactly 4 × the model's scalar count; gradients the same", arguments: cases)
    func parameterBytesAreExact(_ c: Case) throws {
        let model = try RNNLanguageModel(configuration: c.configuration, seed: 1)
        let training = c.configuration.trainingMemoryEstimate(batchSize: 3, bptt: 4, optimizerSlots: 2)
        #expect(training.parameterBytes == 4 * model.parameters.scalarCount)
        #expect(training.gradientBytes == 4 * model.parameters.reduce(0) { $0 + $1.gradient.count })
        #expect(training.optimizerStateBytes == 2 * training.parameterBytes)
        #expect(training.bestWeightsBytes == training.parameterBytes)
        let inference = c.configuration.inferenceMemoryEstimate(batchSize: 2, steps: 7)
        #expect(inference.parameterBytes == training.parameterBytes)
        #expect(inference.optimizerStateBytes == 0 && inference.bestWeightsBytes == 0 && inference.checkpointBytes == 0)
        // The one-hot identity table and its layer's gradient buffer are allocated but are no parameters.
        let table = 4 * (model.embedding.weight.value.count + model.embedding.weight.gradient.count)
        #expect(training.inputTableBytes == (c.input == .oneHot ? table : 0))
        let sgd = c.configuration.trainingMemoryEstimate(batchSize: 3, bptt: 4, optimizerSlots: 0, keepsBestWeights: false,
                                                         savesCheckpoints: false)
        #expect(sgd.optimizerStateBytes == 0 && sgd.bestWeightsBytes == 0 && sgd.checkpointBytes == 0)
        #expect(sgd.totalBytes == sgd.parameterBytes + sgd.gradientBytes + sgd.activationBytes + sgd.inputTableBytes)
    }

    /// The bytes of every buffer a window leaves behind: the model's and its stack's activation buffers, the
    /// layers' states, spare states and state gradients, their kernel caches and workspaces (sized by the C
    /// library's `rnncore_<cell>_sizes`), plus the window's two id arrays.
    static func windowBytes(_ model: RNNLanguageModel, batchSize N: Int, bptt T: Int) throws -> Int {
        4 * (model.bufferScalarCount + 2 * N * T)
    }

    @Test("One window's activation estimate covers every buffer a forward/backward leaves", arguments: cases)
    func activationsCoverTheBuffers(_ c: Case) throws {
        let (N, T) = (3, 4)
        let model = try RNNLanguageModel(configuration: c.configuration, seed: 2)
        model.truncation = c.truncation
        let ids = (0..<(N * T)).map { Int32($0 % 13) }
        let targets = ids.map { ($0 + 1) % 13 }
        // Two windows, so that the spare state buffers exist too.
        for _ in 0..<2 { _ = try model.lossAndGradients(ids: ids, targets: targets, batchSize: N) }
        let used = try Self.windowBytes(model, batchSize: N, bptt: T)
        let estimate = c.configuration.trainingMemoryEstimate(batchSize: N, bptt: T, optimizerSlots: 0,
                                                              truncation: c.truncation)
        #expect(estimate.activationBytes >= used, "estimate \(estimate.activationBytes) < \(used) bytes in use")
        // And not wildly more: the estimate is a count, not a guess.
        #expect(estimate.activationBytes <= used + 4 * 4 * N * T * 13, "estimate \(estimate.activationBytes), \(used) in use")

        // Evaluation (forward only) over a window of 2 × 5.
        let eval = try RNNLanguageModel(configuration: c.configuration, seed: 2)
        _ = try eval.loss(ids: Array(ids.prefix(10)), targets: Array(targets.prefix(10)), batchSize: 2)
        let forwardFloats = eval.bufferScalarCount
        #expect(c.configuration.inferenceMemoryEstimate(batchSize: 2, steps: 5).activationBytes >= 4 * forwardFloats)
    }

    @Test("Training with Adam and the best weights: the estimate is at least what the trainer holds")
    func trainerTotals() throws {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: 13, embeddingSize: 5, hiddenSize: 6, layers: 2,
                                                           cell: .lstm)
        let estimate = configuration.trainingMemoryEstimate(batchSize: 2, bptt: 3, optimizerSlots: 2,
                                                            evaluationBatchSize: 1)
        let model = try RNNLanguageModel(configuration: configuration, seed: 3)
        let adam = Adam(learningRate: 0.01)
        var options = TrainingOptions()
        (options.batchSize, options.bptt, options.epochs, options.evaluationBatchSize) = (2, 3, 2, 1)
        let trainer = Trainer(model: model, optimizer: adam, options: options)
        let text = (0..<40).map { Int32($0 * 7 % 13) }
        try trainer.train(on: text, validation: Array(text.prefix(12)))
        let moments = adam.moments.values.reduce(0) { $0 + $1.m.count + $1.v.count }
        #expect(estimate.optimizerStateBytes == 4 * moments)
        #expect(estimate.bestWeightsBytes == 4 * (trainer.run.bestParameters?.values.reduce(0) { $0 + $1.count } ?? -1))
        #expect(estimate.checkpointBytes >= 4 * (2 + 2) * model.parameters.scalarCount)
    }

    @Test("An absurd configuration is refused at once with insufficientMemory, whatever the machine")
    func absurdConfigurationIsRefused() throws {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: 10_000, embeddingSize: 65_536,
                                                           hiddenSize: 65_536, layers: 8)
        let estimate = configuration.trainingMemoryEstimate(batchSize: 20, bptt: 35, optimizerSlots: 2)
        #expect(estimate.parameterBytes > 250_000_000_000)
        #expect(estimate.description.hasPrefix("about "), "\(estimate)")
        #expect(estimate.description.contains("parameters 280 GB"), "\(estimate)")
        let error = SystemMemory.$override.withValue(4_000_000_000) {
            #expect(throws: RNNCoreError.self) { try RNNLanguageModel(configuration: configuration, seed: 1) }
        }
        guard case let .insufficientMemory(required, available, what)? = error else {
            Issue.record("expected insufficientMemory, got \(String(describing: error))")
            return
        }
        #expect(required == estimate.parameterBytes + estimate.gradientBytes)
        #expect(available == 4_000_000_000)
        #expect(what.contains("8-layer rnn") && what.contains("H 65536"), "\(what)")
        let message = "\(error!)"
        #expect(message.contains("needs about 560 GB") && message.contains("only 4.0 GB available"), "\(message)")

        // The same configuration fits when the machine is said to be large enough (nothing is built: the check
        // runs on the estimate alone, so only a small configuration is built here).
        let small = RNNLanguageModel.Configuration(vocabularySize: 10, embeddingSize: 4, hiddenSize: 4)
        let needed = small.inferenceMemoryEstimate(batchSize: 1, steps: 1)
        try SystemMemory.$override.withValue(needed.parameterBytes + needed.gradientBytes) {
            _ = try RNNLanguageModel(configuration: small, seed: 1)
        }
        SystemMemory.$override.withValue(needed.parameterBytes + needed.gradientBytes - 1) {
            #expect(throws: RNNCoreError.self) { try RNNLanguageModel(configuration: small, seed: 1) }
        }
    }

    @Test("Building from tensors checks the gradients it will allocate")
    func tensorsInitChecksGradients() throws {
        let configuration = RNNLanguageModel.Configuration(vocabularySize: 10, embeddingSize: 4, hiddenSize: 4)
        let model = try RNNLanguageModel(configuration: configuration, seed: 1)
        let bytes = 4 * model.parameters.scalarCount
        try SystemMemory.$override.withValue(bytes) {
            _ = try RNNLanguageModel(configuration: configuration, tensors: model.namedTensors)
        }
        let error = SystemMemory.$override.withValue(bytes - 1) {
            #expect(throws: RNNCoreError.self) {
                try RNNLanguageModel(configuration: configuration, tensors: model.namedTensors)
            }
        }
        guard case let .insufficientMemory(_, _, what)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(what.hasPrefix("the gradients of"), "\(what)")
    }

    @Test("Estimates saturate instead of overflowing")
    func saturation() {
        var huge = RNNLanguageModel.Configuration(vocabularySize: Int.max / 2, embeddingSize: Int.max / 3,
                                                  hiddenSize: Int.max / 5, layers: Int.max)
        huge.cell = .lstm
        let estimate = huge.trainingMemoryEstimate(batchSize: Int.max, bptt: Int.max, optimizerSlots: 2)
        #expect(estimate.parameterBytes == Int.max && estimate.totalBytes == Int.max)
        #expect(estimate.description.hasPrefix("about more than 9.2 EB"))
        #expect(throws: RNNCoreError.self) { try huge.requireMemoryForModel(parametersExist: false) }
    }

    @Test("Byte counts read as decimal units")
    func formatting() {
        #expect(MemoryEstimate.format(512) == "512 bytes")
        #expect(MemoryEstimate.format(17_179_869_184) == "17.2 GB")
        #expect(MemoryEstimate.format(4_294_967_296) == "4.3 GB")
        #expect(MemoryEstimate.format(999_999) == "1.0 MB")
        #expect(MemoryEstimate.format(275_000_000_000) == "275 GB")
    }

    // MARK: - SystemMemory

    static let meminfo = """
        MemTotal:       131899336 kB
        MemFree:         1203344 kB
        MemAvailable:    3906250 kB
        Buffers:          402728 kB
        """
    static let status = """
        Name:\tswift-test
        VmPeak:\t  2000000 kB
        VmSize:\t  1000000 kB
        VmData:\t   250000 kB
        Threads:\t4
        """

    @Test("SystemMemory reads MemAvailable, VmSize and VmData in bytes")
    func parsesProcFiles() {
        #expect(SystemMemory.kilobytes(field: "MemAvailable", in: Self.meminfo) == 3_906_250 * 1024)
        #expect(SystemMemory.kilobytes(field: "VmSize", in: Self.status) == 1_000_000 * 1024)
        #expect(SystemMemory.kilobytes(field: "VmData", in: Self.status) == 250_000 * 1024)
        #expect(SystemMemory.kilobytes(field: "Threads", in: Self.status) == 4)
        #expect(SystemMemory.kilobytes(field: "MemAvail", in: Self.meminfo) == nil)
        #expect(SystemMemory.kilobytes(field: "MemAvailable", in: "MemAvailable: lots kB") == nil)
    }

    @Test("SystemMemory takes the least of free memory, the rlimits less current use, and the cgroup room")
    func takesTheLeast() {
        let free = 3_906_250 * 1024
        #expect(SystemMemory.available(meminfo: Self.meminfo, status: nil, addressSpaceLimit: nil, dataLimit: nil, cgroups: []) == free)
        // ulimit -v 4000000: 4 000 000 kB of address space, 1 000 000 kB already mapped.
        #expect(SystemMemory.available(meminfo: Self.meminfo, status: Self.status, addressSpaceLimit: 4_000_000 * 1024,
                                       dataLimit: nil, cgroups: []) == 3_000_000 * 1024)
        #expect(SystemMemory.available(meminfo: Self.meminfo, status: Self.status, addressSpaceLimit: nil,
                                       dataLimit: 1_250_000 * 1024, cgroups: []) == 1_000_000 * 1024)
        // A limit already exceeded leaves nothing.
        #expect(SystemMemory.available(meminfo: nil, status: Self.status, addressSpaceLimit: 1024, dataLimit: nil, cgroups: []) == 0)
        // cgroup v2: "max" is no limit; v1's near-Int64.max value too.
        let cgroups: [(limit: String?, usage: String?)] = [
            ("max\n", "123456\n"), ("2147483648\n", "1073741824\n"), ("9223372036854771712\n", "5\n"),
        ]
        #expect(SystemMemory.available(meminfo: Self.meminfo, status: nil, addressSpaceLimit: nil, dataLimit: nil,
                                       cgroups: cgroups) == 1_073_741_824)
        #expect(SystemMemory.available(meminfo: nil, status: nil, addressSpaceLimit: nil, dataLimit: nil,
                                       cgroups: [("max", "1")]) == nil)
        #expect(SystemMemory.cgroupBytes("max\n") == nil && SystemMemory.cgroupBytes(" 4096\n") == 4096)
    }

    @Test("SystemMemory finds the cgroup directories of /proc/self/cgroup, the own one and every one above")
    func cgroupDirectories() {
        #expect(SystemMemory.cgroupDirectories("0::/user.slice/session-3.scope\n", root: "/cg") ==
                ["/cg/user.slice/session-3.scope", "/cg/user.slice", "/cg"])
        #expect(SystemMemory.cgroupDirectories("0::/\n", root: "/cg") == ["/cg"])
        let v1 = "12:cpu,cpuacct:/a\n4:memory:/docker/abc\n1:name=systemd:/x\n"
        #expect(SystemMemory.cgroupDirectories(v1, root: "/cg") == ["/cg/memory/docker/abc", "/cg/memory/docker", "/cg/memory"])
    }

    @Test("SystemMemory.available() reads this machine without failing, and the override replaces it")
    func readsThisMachine() {
        if let available = SystemMemory.available() { #expect(available >= 0) }
        #expect(SystemMemory.$override.withValue(42) { SystemMemory.available() } == 42)
    }
}
