import CRNNCore
// How much memory a model takes before it is built, and how much this process can still allocate: so that a
// configuration too large for the machine is refused with a typed error instead of trapping in an allocation.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// The memory a model takes to train or to evaluate, in bytes, by what holds it.
///
/// Every figure counts what RNNCore really allocates (float32 tensors, the layers' kernel workspaces, the id
/// arrays of one window); sums saturate at `Int.max` instead of overflowing, so an absurd configuration gives an
/// absurd figure rather than a trap.
public struct MemoryEstimate: Sendable, Equatable, CustomStringConvertible {
    /// The trainable parameters: 4 bytes × ``RNNLanguageModel/parameters``' scalar count.
    public var parameterBytes: Int
    /// Their gradients (every parameter keeps one, also in a model that is only evaluated).
    public var gradientBytes: Int
    /// The optimizer's per-parameter slots (0 for SGD, Adam's two moments).
    public var optimizerStateBytes: Int
    /// The copy of the weights of the best validation perplexity that the trainer keeps (with `restoreBest`).
    public var bestWeightsBytes: Int
    /// One window of N streams × T steps: every layer's activations, the (N·T, V) logits, dropout masks, the
    /// activation gradients, the recurrent layers' states and kernel workspaces, the window's id arrays (and, in
    /// training, the evaluation window that replaces the forward buffers during validation).
    public var activationBytes: Int
    /// Tables that are not parameters: the (V, V) identity table of one-hot inputs and the gradient buffer its
    /// layer keeps.
    public var inputTableBytes: Int
    /// The copies made while a training checkpoint is written (weights, optimizer slots, best weights, and the
    /// bytes of the largest tensor).
    public var checkpointBytes: Int

    /// Creates an estimate from its parts.
    public init(parameterBytes: Int, gradientBytes: Int, optimizerStateBytes: Int = 0, bestWeightsBytes: Int = 0,
                activationBytes: Int, inputTableBytes: Int = 0, checkpointBytes: Int = 0) {
        self.parameterBytes = parameterBytes
        self.gradientBytes = gradientBytes
        self.optimizerStateBytes = optimizerStateBytes
        self.bestWeightsBytes = bestWeightsBytes
        self.activationBytes = activationBytes
        self.inputTableBytes = inputTableBytes
        self.checkpointBytes = checkpointBytes
    }

    /// Everything together (saturating at `Int.max`).
    public var totalBytes: Int {
        [gradientBytes, optimizerStateBytes, bestWeightsBytes, activationBytes, inputTableBytes, checkpointBytes]
            .reduce(parameterBytes, Saturating.add)
    }

    /// "about 17.2 GB (parameters 4.3 GB, gradients 4.3 GB, optimizer state 8.6 GB, one window's activations
    /// 95.1 MB)": the total and every part that is not zero.
    public var description: String {
        var parts = ["parameters \(Self.format(parameterBytes))"]
        let rest: [(String, Int)] = [
            ("gradients", gradientBytes), ("optimizer state", optimizerStateBytes),
            ("best weights", bestWeightsBytes), ("one window's activations", activationBytes),
            ("one-hot input table", inputTableBytes), ("checkpoint copies", checkpointBytes),
        ]
        for (name, bytes) in rest where bytes > 0 { parts.append("\(name) \(Self.format(bytes))") }
        return "about \(Self.format(totalBytes)) (\(parts.joined(separator: ", ")))"
    }

    /// A byte count in decimal units with three significant digits at most: "512 bytes", "4.3 GB", "17.2 GB",
    /// "275 GB"; "more than 9.2 EB" for a saturated count.
    public static func format(_ bytes: Int) -> String {
        if bytes == Int.max { return "more than 9.2 EB" }
        if bytes < 1000 { return "\(max(bytes, 0)) bytes" }
        let units = ["kB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(bytes) / 1000
        var unit = 0
        while value >= 999.95 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return (value >= 99.95 ? String(format: "%.0f", value) : String(format: "%.1f", value)) + " " + units[unit]
    }
}

/// Non-negative sizes that saturate at `Int.max` instead of overflowing (a negative input counts as 0).
enum Saturating {
    static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = max(a, 0).addingReportingOverflow(max(b, 0))
        return overflow ? .max : sum
    }

    static func multiply(_ factors: Int...) -> Int {
        var product = 1
        for f in factors {
            let (p, overflow) = product.multipliedReportingOverflow(by: max(f, 0))
            if overflow { return .max }
            product = p
        }
        return product
    }

    static func sum(_ terms: Int...) -> Int { terms.reduce(0, add) }
}

extension RNNLanguageModel.Configuration {
    /// The scalars of every parameter tensor (``parameterShapes``), saturating at `Int.max`.
    var parameterScalarCount: Int {
        let (V, D, H, L) = (vocabularySize, embeddingSize, hiddenSize, max(layers, 0))
        var total = input == .oneHot ? 0 : Saturating.multiply(V, D)
        if L > 0 {
            total = Saturating.sum(total, layerParameterScalars(inputSize: D),
                                   Saturating.multiply(L - 1, layerParameterScalars(inputSize: H)))
        }
        return Saturating.sum(total, outputParameterScalars)
    }

    /// The scalars of the output layer's own parameters (``outputParameterShapes``).
    private var outputParameterScalars: Int {
        outputParameterShapes.reduce(0) { Saturating.sum($0, $1.shape.reduce(1) { Saturating.multiply($0, max($1, 0)) }) }
    }

    /// The floats the output layer needs for M rows besides its parameters: the (M, V) logits of the full
    /// softmax, or the adaptive softmax's workspace (the C query), saturating.
    private func outputScalars(rows M: Int) -> Int {
        switch softmax {
        case .full:
            return Saturating.multiply(M, vocabularySize)
        case .adaptive:
            let (status, floats) = AdaptiveSoftmax.workspaceQuery(
                inputSize: hiddenSize, bounds: (cutoffs + [vocabularySize]).map(Int64.init),
                projectionSizes: tailProjectionSizes.map(Int64.init), rows: M)
            return status == RNNCORE_OK && floats < Int64(Int.max) ? Int(floats) : Int.max
        }
    }

    /// G, the gate width, saturating.
    private var gateWidth: Int { Saturating.multiply(cell.specification.gates, max(hiddenSize, 0)) }

    /// The scalars of one recurrent layer's parameters (as ``CellSpecification/parameters``) with input size D.
    private func layerParameterScalars(inputSize D: Int) -> Int {
        let (H, G) = (max(hiddenSize, 0), gateWidth)
        return cell.specification.parameters.reduce(0) { total, p in
            Saturating.sum(total, p.shape(inputSize: max(D, 0), hiddenSize: H, gateWidth: G).reduce(1) { Saturating.multiply($0, $1) })
        }
    }

    /// The cache and workspace floats of one layer's kernels for a window (the C `rnncore_<cell>_sizes` query),
    /// saturating at `Int.max` when the window is out of the kernels' range.
    private func kernelScalars(_ N: Int, _ T: Int, truncation: Int) -> (cache: Int, workspace: Int) {
        let window = rnncore_window(N: Int64(N), T: Int64(T), D: Int64(max(embeddingSize, hiddenSize)),
                                    H: Int64(hiddenSize), truncation: Int64(max(truncation, 0)))
        return cell.specification.bufferSizes(window) ?? (Int.max, Int.max)
    }

    /// The floats of the largest parameter tensor.
    private var largestParameterScalarCount: Int {
        let (V, D, H, G) = (vocabularySize, embeddingSize, hiddenSize, gateWidth)
        return ([input == .oneHot ? 0 : Saturating.multiply(V, D), Saturating.multiply(D, G), Saturating.multiply(H, G)]
                + outputParameterShapes.map { $0.shape.reduce(1) { Saturating.multiply($0, max($1, 0)) } }).max()!
    }

    /// The (V, V) one-hot identity table and its layer's gradient buffer, in floats.
    private var inputTableScalarCount: Int {
        input == .oneHot ? Saturating.multiply(2, vocabularySize, vocabularySize) : 0
    }

    /// The floats of one window's forward pass over N streams × T steps: the embedded inputs, every layer's
    /// outputs (and an LSTM's cell states and gates), the logits, the recurrent states (current and spare), and
    /// with dropout its masks and masked copies; plus the window's two Int32 id arrays (counted as floats).
    private func forwardScalars(_ N: Int, _ T: Int, dropout withDropout: Bool) -> Int {
        let (D, H, L) = (embeddingSize, hiddenSize, max(layers, 0))
        let NT = Saturating.multiply(N, T)
        let NH = Saturating.multiply(N, H)
        // hs, the kernel's cache, and the carried state twice (current and spare).
        let perLayer = Saturating.sum(Saturating.multiply(NT, H), kernelScalars(N, T, truncation: 0).cache,
                                      Saturating.multiply(2, cell.specification.stateCount, NH))
        var total = Saturating.sum(Saturating.multiply(NT, D), Saturating.multiply(L, perLayer),
                                   outputScalars(rows: NT), Saturating.multiply(2, NT))
        if withDropout {
            // A mask and the masked copy at every site: the embedding output (D) and the input of every later layer.
            total = Saturating.sum(total, Saturating.multiply(2, NT, D), Saturating.multiply(2, L, NT, H))
        }
        return total
    }

    /// The floats a training window's backward pass adds: the activation gradients (every layer's output, the
    /// embedded input), the kernel workspace and the initial-state gradients of every layer.
    private func backwardScalars(_ N: Int, _ T: Int, truncation: Int) -> Int {
        let (D, H, L) = (embeddingSize, hiddenSize, max(layers, 0))
        let NT = Saturating.multiply(N, T)
        let NH = Saturating.multiply(N, H)
        let workspace = kernelScalars(N, T, truncation: truncation).workspace
        let stateGradients = Saturating.multiply(cell.specification.stateCount, NH)
        let perLayer = Saturating.sum(Saturating.multiply(NT, H), workspace, stateGradients)
        return Saturating.sum(Saturating.multiply(NT, D), Saturating.multiply(L, perLayer))
    }

    /// The floats of the states a layer carries for N streams (saved aside while the trainer evaluates).
    private func carriedStateScalars(_ N: Int) -> Int {
        Saturating.multiply(max(layers, 0), cell.specification.stateCount, N, hiddenSize)
    }

    /// What training this configuration takes: the parameters, their gradients, the optimizer's slots, the best
    /// weights the trainer keeps, one training window of N × T (forward, dropout, backward), and the copies made
    /// while a training checkpoint is written.
    /// - Parameters:
    ///   - batchSize: N, the number of streams trained together.
    ///   - bptt: T, the window.
    ///   - optimizerSlots: tensors of parameter size the optimizer keeps: 0 for SGD, 2 for Adam.
    ///   - keepsBestWeights: whether the trainer keeps a copy of the best weights (`restoreBest` with a
    ///     validation text).
    ///   - savesCheckpoints: whether training checkpoints are written (they copy weights and slots while writing).
    ///   - evaluationBatchSize: the batch size of the validation pass after each epoch; 0 when there is none.
    ///   - truncation: the layers' ``RecurrentLayer/truncation`` (it sizes the backward workspace).
    public func trainingMemoryEstimate(batchSize: Int, bptt: Int, optimizerSlots: Int, keepsBestWeights: Bool = true,
                                       savesCheckpoints: Bool = true, evaluationBatchSize: Int = 0,
                                       truncation: Int = 0) -> MemoryEstimate {
        let P = parameterScalarCount
        let forward = forwardScalars(batchSize, bptt, dropout: dropout > 0)
        // Validation replaces the forward buffers with its own (no dropout) while the saved training state stays.
        let evaluation = evaluationBatchSize > 0
            ? Saturating.sum(forwardScalars(evaluationBatchSize, bptt, dropout: false), carriedStateScalars(batchSize))
            : 0
        let activations = Saturating.sum(backwardScalars(batchSize, bptt, truncation: truncation), max(forward, evaluation))
        let copies = Saturating.sum(Saturating.multiply(Saturating.sum(1, max(optimizerSlots, 0), keepsBestWeights ? 1 : 0), P),
                                    carriedStateScalars(batchSize), largestParameterScalarCount)
        return MemoryEstimate(
            parameterBytes: Saturating.multiply(4, P), gradientBytes: Saturating.multiply(4, P),
            optimizerStateBytes: Saturating.multiply(4, max(optimizerSlots, 0), P),
            bestWeightsBytes: keepsBestWeights ? Saturating.multiply(4, P) : 0,
            activationBytes: Saturating.multiply(4, activations),
            inputTableBytes: Saturating.multiply(4, inputTableScalarCount),
            checkpointBytes: savesCheckpoints ? Saturating.multiply(4, copies) : 0)
    }

    /// What loading, evaluating or sampling this configuration takes: the parameters (with the gradient buffers
    /// every parameter keeps) and one evaluation window of N streams × `steps` (forward only).
    public func inferenceMemoryEstimate(batchSize: Int, steps: Int) -> MemoryEstimate {
        let P = parameterScalarCount
        return MemoryEstimate(
            parameterBytes: Saturating.multiply(4, P), gradientBytes: Saturating.multiply(4, P),
            activationBytes: Saturating.multiply(4, forwardScalars(batchSize, steps, dropout: false)),
            inputTableBytes: Saturating.multiply(4, inputTableScalarCount))
    }

    /// "a 2-layer lstm model (V 10000, D 200, H 650)".
    var summary: String {
        "a \(layers)-layer \(cell.rawValue) model (V \(vocabularySize), \(input == .oneHot ? "one-hot inputs" : "D \(embeddingSize)"), H \(hiddenSize))"
    }

    /// Throws unless the memory a model of this configuration allocates on creation fits what the process can
    /// still allocate: its parameters (unless `parametersExist`, when they were handed in already built), their
    /// gradients and the one-hot table.
    /// - Throws: ``RNNCoreError/invalidArgument(_:)`` when the sizes overflow, or
    ///   ``RNNCoreError/insufficientMemory(required:available:what:)``.
    func requireMemoryForModel(parametersExist: Bool) throws(RNNCoreError) {
        let P = parameterScalarCount
        guard P < Int.max / 8, inputTableScalarCount < Int.max / 8 else {
            throw .invalidArgument("the parameter count of \(summary) overflows")
        }
        let required = (parametersExist ? 4 * P : 8 * P) + 4 * inputTableScalarCount
        guard let available = SystemMemory.available(), required > available else { return }
        throw .insufficientMemory(required: required, available: available,
                                  what: parametersExist ? "the gradients of \(summary)" : "the parameters and gradients of \(summary)")
    }
}

/// What this process can still allocate.
public enum SystemMemory {
    /// When set, ``available()`` returns this figure instead of reading the system: for tests, or to apply a
    /// `--max-memory` cap (set it to the least of the cap and ``available()``).
    @TaskLocal public static var override: Int?

    /// The memory this process can still allocate, in bytes: the least of the kernel's estimate of available
    /// memory (`MemAvailable` in /proc/meminfo), the address-space limit (RLIMIT_AS) less the current virtual
    /// size, the data-segment limit (RLIMIT_DATA) less the current data size, and the room left under the
    /// memory limit of this process's cgroup and every cgroup above it (v2 `memory.max` − `memory.current`, v1
    /// `memory.limit_in_bytes` − `memory.usage_in_bytes`); nil when none can be read.
    public static func available() -> Int? {
        if let override { return override }
        let status = readSmallFile("/proc/self/status")
        var cgroups: [(limit: String?, usage: String?)] = []
        if let membership = readSmallFile("/proc/self/cgroup") {
            for directory in cgroupDirectories(membership) {
                let v2 = (readSmallFile(directory + "/memory.max"), readSmallFile(directory + "/memory.current"))
                if v2.0 != nil {
                    cgroups.append((v2.0, v2.1))
                } else {
                    cgroups.append((readSmallFile(directory + "/memory.limit_in_bytes"),
                                    readSmallFile(directory + "/memory.usage_in_bytes")))
                }
            }
        }
        return available(meminfo: readSmallFile("/proc/meminfo"), status: status,
                         addressSpaceLimit: limit(RLIMIT_AS), dataLimit: limit(RLIMIT_DATA), cgroups: cgroups)
    }

    /// The least of the figures the texts and limits give (see ``available()``); nil when none gives one.
    static func available(meminfo: String?, status: String?, addressSpaceLimit: Int?, dataLimit: Int?,
                          cgroups: [(limit: String?, usage: String?)]) -> Int? {
        var figures: [Int] = []
        if let meminfo, let free = kilobytes(field: "MemAvailable", in: meminfo) { figures.append(free) }
        if let addressSpaceLimit {
            let used = status.flatMap { kilobytes(field: "VmSize", in: $0) } ?? 0
            figures.append(max(addressSpaceLimit - used, 0))
        }
        if let dataLimit {
            let used = status.flatMap { kilobytes(field: "VmData", in: $0) } ?? 0
            figures.append(max(dataLimit - used, 0))
        }
        for cgroup in cgroups {
            if let limit = cgroup.limit.flatMap(cgroupBytes) {
                let usage = cgroup.usage.flatMap(cgroupBytes) ?? 0
                figures.append(max(limit - usage, 0))
            }
        }
        return figures.min()
    }

    /// The value of a `Name:   1234 kB` line of /proc/meminfo or /proc/self/status, in bytes.
    static func kilobytes(field: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, parts[0] == field + ":", let value = Int(parts[1]), value >= 0 else { continue }
            let scale = parts.count >= 3 && parts[2].lowercased() == "kb" ? 1024 : 1
            let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? .max : bytes
        }
        return nil
    }

    /// A cgroup memory file's byte count; nil for v2's `max` and for v1's "no limit" (a value near `Int64.max`).
    static func cgroupBytes(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = Int(trimmed), value >= 0, value < Int.max / 2 else { return nil }
        return value
    }

    /// The cgroup directories whose memory limits apply to this process, from the text of /proc/self/cgroup: for
    /// the v2 entry (`0::/path`) and a v1 `memory` entry, the process's own cgroup and every one above it.
    static func cgroupDirectories(_ membership: String, root: String = "/sys/fs/cgroup") -> [String] {
        var directories: [String] = []
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let base: String
            if fields[0] == "0" && fields[1].isEmpty {
                base = root
            } else if fields[1].split(separator: ",").contains("memory") {
                base = root + "/memory"
            } else {
                continue
            }
            var components = fields[2].split(separator: "/").map(String.init)
            while true {
                directories.append(([base] + components).joined(separator: "/"))
                if components.isEmpty { break }
                components.removeLast()
            }
        }
        return directories
    }

    /// A resource limit in bytes, or nil when unlimited or unreadable.
    private static func limit(_ resource: __rlimit_resource) -> Int? {
        var value = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &value) == 0, value.rlim_cur != rlim_t.max else { return nil }  // RLIM_INFINITY
        return value.rlim_cur > UInt64(Int.max) ? nil : Int(value.rlim_cur)
    }

    /// The text of a small file such as /proc/meminfo (whose size `stat` reports as 0), or nil.
    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
