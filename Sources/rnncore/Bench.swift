import ArgumentParser
import CRNNCore
import Foundation
import RNNCore

#if canImport(Glibc)
import Glibc
#endif

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a training step and a forward step, and compare with numpy and PyTorch on this machine.",
        discussion: """
        For each configuration: the median over --steps steps (after --warmup) of a full training step (forward, \
        backward, global-norm clipping at 0.25, SGD update) and of a forward-only step; tokens per second; the \
        step's GFLOP/s as a fraction of the sgemm peak measured in the same run (every thread running its own \
        single-threaded 1024³ cblas_sgemm at once: the BLAS kernel on all the library's cores). Then the peers in \
        benchmarks/ (the textbook's numpy layers, PyTorch if installed) run the same configuration one after \
        another, and their ratios to RNNCore are printed. Configurations (V, D, H, N, T; one tanh RNN layer \
        unless named): BOOK 10000 100 100 10 5, W100 10000 100 100 20 35, W650 10000 650 650 20 35, \
        C512 65 512 512 64 64, L200 10000 200 200 20 20 (2-layer LSTM), L650 10000 650 650 20 35 (2-layer LSTM), \
        G650 10000 650 650 20 35 (2-layer GRU). Word-level targets are drawn from a Zipf distribution over \
        the frequency-ordered ids (as in real text; the full softmax's cost does not depend on them). \
        With --softmax adaptive, every word-level configuration is timed twice in the same run, with the full \
        softmax and with an adaptive one (cutoffs 2000,6000, div value 4), and the speed-up is printed; its \
        FLOPs count the head for every row and each tail cluster for the rows whose target is in it. The PyTorch \
        peer then also runs with nn.AdaptiveLogSoftmaxWithLoss of the same shape on Zipf targets. \
        With --generate K, generation (N = 1, one token at a time) is timed too, against the PyTorch peer's \
        sampling loop and the memory-bandwidth limit of reading every weight once per token (the weights' \
        footprint read again and again, so a model that fits in the caches gets the caches' rate).
        """)

    @Option(name: .customLong("config"),
            help: ArgumentHelp("BOOK, W100, W650, C512, L200, L650 or G650; repeat for several (default: all but "
                               + "L650 and G650, the slowest)."))
    var configs: [BenchConfig] = BenchConfig.defaults
    @Option(parsing: .unconditional, help: "Timed steps per measurement.") var steps: Int = 20
    @Option(parsing: .unconditional, help: "Untimed warm-up steps before each measurement.") var warmup: Int = 3
    @Option(help: "Peers to run: numpy, torch, or none (comma-separated).") var peers: String = "numpy,torch"
    @Option(name: .customLong("peers-dir"), help: "Where the peer scripts are (default: ./benchmarks).")
    var peersDirectory: String?
    @Flag(help: "Print one JSON object with every result.") var json = false
    @Option(help: "Output layer: full, or adaptive (times each word-level configuration with both).")
    var softmax: SoftmaxKind = .full
    @Option(name: .customLong("generate"), parsing: .unconditional,
            help: ArgumentHelp("Also time generating K tokens one at a time (N = 1, as rnncore generate does) for "
                               + "each configuration, against the PyTorch peer's sampling loop and against the "
                               + "memory-bandwidth limit of reading every weight once per token (0: off).",
                               valueName: "K"))
    var generateTokens: Int = 0

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or positive, got \(warmup)") }
        guard generateTokens >= 0 else {
            throw ValidationError("--generate must be 0 (off) or a positive token count, got \(generateTokens)")
        }
        for peer in peerList where !["numpy", "torch"].contains(peer) {
            throw ValidationError("unknown peer \(peer): use numpy, torch or none")
        }
    }

    private var peerList: [String] {
        peers == "none" ? [] : peers.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    func run() throws {
        let log: (String) -> Void = { json ? writeError($0 + "\n") : print($0) }
        let machine = BenchMachine.current
        log("machine: \(machine.description)")
        let sgemmPeak = try measureSGEMMPeak(threads: machine.threads)
        let peak = sgemmPeak.gflops
        log(String(format: "sgemm peak: %.1f GFLOP/s (%d independent single-threaded 1024³ cblas_sgemm calls at once, "
                   + "best of 5); one 1024³ product through the library's GEMM: %.1f GFLOP/s", sgemmPeak.independent,
                   sgemmPeak.threads, sgemmPeak.library))
        var generations: [(config: BenchConfig, rate: Double, torch: [String: Any]?)] = []
        var results: [[String: Any]] = []
        for config in configs {
            let ours = try BenchRunner(config: config, softmax: .full, steps: steps, warmup: warmup).run()
            let adaptive = softmax == .adaptive && config.isWordLevel
                ? try BenchRunner(config: config, softmax: .adaptive, steps: steps, warmup: warmup).run() : nil
            var entry: [String: Any] = [
                "config": config.rawValue, "V": config.sizes.V, "D": config.sizes.D, "H": config.sizes.H,
                "N": config.sizes.N, "T": config.sizes.T, "cell": config.cell.rawValue, "layers": config.layers,
                "rnncore": ours.dictionary(peak: peak),
            ]
            log("")
            log("\(config.rawValue)  (V=\(config.sizes.V) D=\(config.sizes.D) H=\(config.sizes.H) N=\(config.sizes.N) T=\(config.sizes.T), \(config.layers)-layer \(config.cell.specification.displayName))")
            log("  impl               train ms   train tok/s   fwd ms   fwd tok/s   rnncore faster: train    fwd")
            log(ours.row(name: "rnncore", trainRatio: 1, forwardRatio: 1))
            log(String(format: "  rnncore training: %.1f GFLOP/s = %.0f%% of the sgemm peak; peak RSS %.0f MiB (%.2f× the %.0f MiB of parameters, gradients and one window's activations); ",
                       ours.trainGFLOPS, 100 * ours.trainGFLOPS / peak, ours.peakResidentMiB,
                       ours.peakResidentMiB / (ours.trainingBytes / 1048576), ours.trainingBytes / 1048576)
                + (ours.allocationsPerTrainingStep.map { String(format: "%.2f heap allocations per step", $0) }
                   ?? "allocations not counted (benchmarks/count-allocations.sh counts them)"))
            if let adaptive {
                entry["rnncore_adaptive"] = adaptive.dictionary(peak: peak)
                log(adaptive.row(name: "rnncore adaptive", trainRatio: ours.trainMilliseconds / adaptive.trainMilliseconds,
                                 forwardRatio: ours.forwardMilliseconds / adaptive.forwardMilliseconds))
                log(String(format: "  adaptive softmax (cutoffs %@): training step %.2f× faster than the full softmax, forward %.2f×; %.1f GFLOP/s = %.0f%% of the sgemm peak, %.1f%% of the full step's FLOPs",
                           adaptive.cutoffs.map(String.init).joined(separator: ","),
                           ours.trainMilliseconds / adaptive.trainMilliseconds,
                           ours.forwardMilliseconds / adaptive.forwardMilliseconds, adaptive.trainGFLOPS,
                           100 * adaptive.trainGFLOPS / peak, 100 * adaptive.forwardFLOPs / ours.forwardFLOPs))
                if peerList.contains("torch") {
                    // The lean peer with the same output layer: nn.AdaptiveLogSoftmaxWithLoss, Zipf targets.
                    let torch = runPeer("torch", config: config, extra: ["--softmax", "adaptive"])
                    entry["torch_adaptive"] = torch
                    if let train = (torch["train_step_ms"] as? [String: Any])?["median"] as? Double,
                       let forward = (torch["forward_ms"] as? [String: Any])?["median"] as? Double {
                        let t = config.sizes.tokens
                        log("  " + "torch adaptive".padding(toLength: 16, withPad: " ", startingAt: 0)
                            + String(format: " %9.2f  %12.0f  %7.2f  %10.0f  %22.2fx  %5.2fx", train, t / train * 1000,
                                     forward, t / forward * 1000, train / adaptive.trainMilliseconds,
                                     forward / adaptive.forwardMilliseconds)
                            + "  (ratios against rnncore adaptive)")
                    } else {
                        log("  torch adaptive: skipped — \(torch["skipped"] as? String ?? "no result")")
                    }
                }
            } else if softmax == .adaptive {
                log("  adaptive softmax: not timed for a character-level configuration (V \(config.sizes.V))")
            }
            if generateTokens > 0 {
                let rate = try measureGeneration(config: config, tokens: generateTokens)
                let torch = peerList.contains("torch")
                    ? runPeer("torch", config: config, extra: ["--generate", String(generateTokens)]) : nil
                generations.append((config, rate, torch))
            }
            for peer in peerList {
                let result = runPeer(peer, config: config)
                entry[peer] = result
                if let train = (result["train_step_ms"] as? [String: Any])?["median"] as? Double,
                   let forward = (result["forward_ms"] as? [String: Any])?["median"] as? Double {
                    let t = config.sizes.tokens
                    log("  " + peer.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %9.2f  %12.0f  %7.2f  %10.0f  %22.2fx  %5.2fx", train,
                               t / train * 1000, forward, t / forward * 1000, train / ours.trainMilliseconds,
                               forward / ours.forwardMilliseconds))
                } else {
                    log("  \(peer): skipped — \(result["skipped"] as? String ?? "no result")")
                }
            }
            results.append(entry)
        }
        // Last, so that its 256 MiB buffer does not count in the configurations' peak resident memory.
        let bandwidth = generateTokens > 0 ? measureReadBandwidth(threads: machine.threads) : nil
        if let bandwidth {
            log("")
            log(String(format: "memory read bandwidth: %.1f GB/s (256 MiB summed by %d threads, best of 3); each "
                       + "configuration's limit reads its own weight footprint again and again the same way", bandwidth,
                       machine.threads))
            for (index, generation) in generations.enumerated() {
                let config = generation.config, rate = generation.rate
                let footprint = measureReadBandwidth(threads: machine.threads, bytes: config.weightBytesPerToken)
                let limit = footprint * 1e9 / config.weightBytesPerToken
                var record: [String: Any] = [
                    "tokens": generateTokens, "tokens_per_s": rate, "weight_bytes_per_token": config.weightBytesPerToken,
                    "weight_read_gb_per_s": footprint,
                    "bandwidth_limit_tokens_per_s": limit, "fraction_of_bandwidth_limit": rate / limit,
                ]
                var line = config.rawValue + String(format: " generation (N = 1, %d tokens): rnncore %.0f tokens/s = %.0f%% of the bandwidth limit %.0f tokens/s (%.1f MB of weights per token, read at %.1f GB/s)",
                                  generateTokens, rate, 100 * rate / limit, limit, config.weightBytesPerToken / 1e6,
                                  footprint)
                if let torch = generation.torch {
                    record["torch"] = torch
                    if let theirs = torch["generate_tokens_per_s"] as? Double {
                        line += String(format: "; torch %.0f tokens/s: rnncore %.2f× faster", theirs, rate / theirs)
                    } else {
                        line += "; torch: skipped — \(torch["skipped"] as? String ?? "no result")"
                    }
                }
                results[index]["generation"] = record
                log(line)
            }
        }
        if json {
            var object: [String: Any] = ["sgemm_peak_gflops": peak, "sgemm_library_gflops": sgemmPeak.library,
                                         "sgemm_peak_method": sgemmPeak.independent.isFinite
                                             ? "independent single-threaded cblas_sgemm on every thread" : "library GEMM",
                                         "configs": results, "steps": steps, "warmup": warmup,
                                         "softmax": softmax.rawValue, "machine": machine.dictionary]
            if let bandwidth { object["memory_read_gb_per_s"] = bandwidth }
            print(try JSONOutput.line(object))
        }
    }

    /// Runs one peer script and returns its JSON object, or `["skipped": reason]`.
    private func runPeer(_ peer: String, config: BenchConfig, extra: [String] = []) -> [String: Any] {
        let script = peer == "numpy" ? "numpy_rnnlm.py" : "torch_rnnlm.py"
        let directory = peersDirectory ?? "benchmarks"
        let path = URL(fileURLWithPath: directory).appendingPathComponent(script).path
        guard FileManager.default.fileExists(atPath: path) else {
            return ["skipped": "\(path) not found (run from the repository root or pass --peers-dir)"]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", path, "--config", config.rawValue, "--steps", String(steps),
                             "--warmup", String(warmup), "--json"] + extra
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        do {
            try process.run()
        } catch {
            return ["skipped": "cannot start python3: \(error)"]
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            return ["skipped": "\(script) failed (exit \(process.terminationStatus))"]
        }
        return object
    }
}

/// The benchmark configurations.
enum BenchConfig: String, CaseIterable, ExpressibleByArgument {
    case BOOK, W100, W650, C512, L200, L650, G650

    /// What `rnncore bench` runs without `--config`: every configuration but L650 and G650, the slowest (their
    /// numpy peers dominate the run).
    static let defaults: [BenchConfig] = [.BOOK, .W100, .W650, .C512, .L200]

    init?(argument: String) { self.init(rawValue: argument.uppercased()) }

    var sizes: (V: Int, D: Int, H: Int, N: Int, T: Int, tokens: Double) {
        switch self {
        case .BOOK: (10000, 100, 100, 10, 5, 50)
        case .W100: (10000, 100, 100, 20, 35, 700)
        case .W650: (10000, 650, 650, 20, 35, 700)
        case .C512: (65, 512, 512, 64, 64, 4096)
        case .L200: (10000, 200, 200, 20, 20, 400)   // Zaremba et al.'s "small" PTB LSTM (without dropout)
        case .L650: (10000, 650, 650, 20, 35, 700)   // their "medium" one (without dropout)
        case .G650: (10000, 650, 650, 20, 35, 700)   // the same with GRU layers
        }
    }

    /// The recurrent cell of every layer.
    var cell: CellKind {
        switch self {
        case .BOOK, .W100, .W650, .C512: .rnn
        case .L200, .L650: .lstm
        case .G650: .gru
        }
    }

    /// L, the number of stacked recurrent layers.
    var layers: Int {
        switch self {
        case .BOOK, .W100, .W650, .C512: 1
        case .L200, .L650, .G650: 2
        }
    }

    /// Whether the configuration is a word-level model (PTB's 10,000 words), where the adaptive softmax applies.
    var isWordLevel: Bool { sizes.V >= 1000 }

    /// The model: embedding, `layers` recurrent layers of `cell`, the given output layer (adaptive: cutoffs 2000
    /// and 6000, div value 4); no dropout.
    func modelConfiguration(softmax: SoftmaxKind = .full) -> RNNLanguageModel.Configuration {
        .init(vocabularySize: sizes.V, embeddingSize: sizes.D, hiddenSize: sizes.H, layers: layers, cell: cell,
              softmax: softmax, cutoffs: softmax == .adaptive ? [2000, 6000] : [])
    }

    /// The input size of layer l: D for the first, H above it.
    private func inputSize(ofLayer l: Int) -> Int { l == 0 ? sizes.D : sizes.H }

    /// Bytes that training must hold: parameters, their gradients (SGD keeps no other state) and one window's
    /// activations with their gradients, the recurrent kernels' caches and workspaces and the carried states, as
    /// the model's own ``RNNLanguageModel/Configuration/trainingMemoryEstimate`` counts them for every cell (no
    /// best-weights copy, no checkpoints, no validation window in the benchmark).
    func trainingBytes(softmax: SoftmaxKind) -> Double {
        let estimate = modelConfiguration(softmax: softmax).trainingMemoryEstimate(
            batchSize: sizes.N, bptt: sizes.T, optimizerSlots: 0, keepsBestWeights: false, savesCheckpoints: false)
        return Double(estimate.totalBytes)
    }

    /// Multiply-add FLOPs of one forward pass: every layer's input projection and recurrence, and the output
    /// projection, 2·NT·(Σ_l (D_l·G + H·G)) + the output layer's, with G = gates·H from the cell table (1, 4 or
    /// 3 gate blocks for the RNN, LSTM and GRU) and D_l = D for the first layer, H above it (the element-wise gate
    /// and softmax work is not counted). The full softmax's output layer is 2·NT·H·V; the adaptive one's is
    /// 2·NT·H·K for the head plus 2·(H·P_i + P_i·S_i) for each row whose target is in cluster i. A training step
    /// counts 3× this (backward: two GEMMs per forward one).
    func forwardFLOPs(softmax: SoftmaxKind, targets: [Int32]) -> Double {
        let s = sizes
        let recurrent = (0..<layers).reduce(0) {
            $0 + cell.specification.forwardMultiplyAdds(inputSize: inputSize(ofLayer: $1), hiddenSize: s.H)
        }
        let c = modelConfiguration(softmax: softmax)
        var output = 2 * s.tokens * Double(s.H * s.V)
        if softmax == .adaptive {
            let bounds = c.cutoffs + [s.V]
            output = 2 * s.tokens * Double(s.H * (c.cutoffs[0] + c.cutoffs.count))
            for (i, p) in c.tailProjectionSizes.enumerated() {
                let rows = targets.filter { Int($0) >= bounds[i] && Int($0) < bounds[i + 1] }.count
                output += 2 * Double(rows) * Double(s.H * p + p * (bounds[i + 1] - bounds[i]))
            }
        }
        return 2 * s.tokens * Double(recurrent) + output
    }
}

extension BenchConfig {
    /// Bytes of weights one generated token reads: every layer's Wx, Wh and bias, the output projection and bias
    /// (the embedding row is negligible); generation at N = 1 is a chain of matrix-vector products over them.
    var weightBytesPerToken: Double {
        let s = sizes
        let G = cell.specification.gates * s.H
        let recurrent = (0..<layers).reduce(0) { $0 + ($1 == 0 ? s.D : s.H) * G + s.H * G + G }
        return 4 * Double(recurrent + s.H * s.V + s.V)
    }
}

/// Tokens per second of ``RNNLanguageModel/generate(prompt:count:options:)`` (default sampling) over `tokens`
/// tokens, after 20 warm-up tokens, for a freshly initialised model of the configuration.
func measureGeneration(config: BenchConfig, tokens: Int) throws -> Double {
    let model = try RNNLanguageModel(configuration: config.modelConfiguration(), seed: 1)
    _ = try model.generate(prompt: [0], count: 20)
    let start = DispatchTime.now().uptimeNanoseconds
    _ = try model.generate(prompt: [0], count: tokens)
    return Double(tokens) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

/// GB/s of reading `bytes` of memory again and again, as generation reads its weights once per token: the buffer
/// summed in `threads` slices at once, enough passes for about 256 MiB a timing, best of 3 after a warm-up pass.
/// With 256 MiB (far larger than the caches) it is the DRAM bandwidth; with a configuration's weight footprint it
/// is the rate at which the memory hierarchy serves that footprint (from the L3 when it fits there), the limit
/// that footprint's generation is bound by.
func measureReadBandwidth(threads: Int, bytes: Double = Double(256 << 20)) -> Double {
    let count = max(Int(bytes) / 4 / 16 * 16, 16 * max(threads, 1))
    let passes = max(1, (256 << 20) / (count * 4))
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1)
    let parts = max(threads, 1)
    var best = 0.0
    for round in 0..<4 {
        let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: parts)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0)
        // Each slice reads its own range and writes its own sum: no two iterations touch the same memory.
        nonisolated(unsafe) let base = buffer.baseAddress!
        nonisolated(unsafe) let out = sums
        let rounds = round == 0 ? 1 : passes  // round 0 only warms the caches and is not timed
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts / 16 * 16, hi = count * (part + 1) / parts / 16 * 16
            var acc = SIMD16<Float>(repeating: 0)
            for _ in 0..<rounds {
                var i = lo
                while i + 16 <= hi {
                    acc += UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self)
                    i += 16
                }
            }
            out[part] = acc.sum()
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        // Every float is 1, so the sums count the floats read (to float rounding): checking them keeps the loop
        // from being optimised away.
        let expected = Double(count) * Double(rounds), total = sums.reduce(0.0) { $0 + Double($1) }
        if abs(total - expected) > 1e-3 * expected { return .nan }
        if round > 0 { best = max(best, Double(count * 4 * rounds) / seconds / 1e9) }
    }
    return best
}

/// What the bench ran on: the processor, the BLAS and its kernel, and the thread count.
struct BenchMachine {
    var cpu: String
    var processors: Int
    var avx512: Bool
    var blas: String
    var blasCore: String
    var threads: Int

    static var current: BenchMachine {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String? {
            info.split(separator: "\n").first { $0.hasPrefix(name) }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let flags = field("flags")?.split(separator: " ") ?? []
        var core = "unknown"
        if let process = dlopen(nil, RTLD_NOW) {
            if let symbol = dlsym(process, "openblas_get_corename") {
                let getCore = unsafeBitCast(symbol, to: (@convention(c) () -> UnsafePointer<CChar>?).self)
                core = getCore().map { String(cString: $0) } ?? "unknown"
            }
            dlclose(process)
        }
        return BenchMachine(cpu: field("model name") ?? "unknown", processors: ProcessInfo.processInfo.activeProcessorCount,
                            avx512: flags.contains("avx512f"), blas: RNNCoreCommand.openBLASDescription, blasCore: core,
                            threads: Int(rnncore_threads()))
    }

    var description: String {
        "\(cpu), \(processors) processors\(avx512 ? " (AVX-512)" : ""); BLAS \(blas), kernel \(blasCore); "
            + "RNNCore threads \(threads) (RNNCORE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the processors)"
    }

    var dictionary: [String: Any] {
        ["cpu": cpu, "processors": processors, "avx512": avx512, "blas": blas, "blas_core": blasCore,
         "threads": threads, "OPENBLAS_CORETYPE": ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"]
    }
}

/// Times RNNCore on one configuration.
struct BenchRunner {
    let config: BenchConfig
    let softmax: SoftmaxKind
    let steps: Int
    let warmup: Int

    struct Result {
        var trainMilliseconds: Double
        var trainMinimum: Double
        var forwardMilliseconds: Double
        var forwardMinimum: Double
        var trainGFLOPS: Double
        var forwardGFLOPS: Double
        var peakResidentMiB: Double
        var trainingMiB: Double
        var tokens: Double
        var forwardFLOPs: Double
        var trainingBytes: Double
        var cutoffs: [Int]
        /// Heap allocations (malloc-family calls, all threads) per training step after warm-up; nil unless the
        /// counter of benchmarks/malloc_count.c is preloaded.
        var allocationsPerTrainingStep: Double?

        func row(name: String, trainRatio: Double, forwardRatio: Double) -> String {
            "  " + name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %9.2f  %12.0f  %7.2f  %10.0f  %22.2fx  %5.2fx", trainMilliseconds,
                   tokens / trainMilliseconds * 1000, forwardMilliseconds, tokens / forwardMilliseconds * 1000,
                   trainRatio, forwardRatio)
        }

        func dictionary(peak: Double) -> [String: Any] {
            [
                "train_step_ms": ["median": trainMilliseconds, "min": trainMinimum],
                "forward_ms": ["median": forwardMilliseconds, "min": forwardMinimum],
                "train_tokens_per_s": tokens / trainMilliseconds * 1000,
                "forward_tokens_per_s": tokens / forwardMilliseconds * 1000,
                "train_gflops": trainGFLOPS, "forward_gflops": forwardGFLOPS,
                "train_fraction_of_sgemm_peak": trainGFLOPS / peak,
                "peak_rss_mib": peakResidentMiB,
                "training_state_mib": trainingMiB,
                "allocations_per_train_step": allocationsPerTrainingStep.map { $0 as Any } ?? NSNull(),
            ]
        }
    }

    func run() throws -> Result {
        let s = config.sizes
        let model = try RNNLanguageModel(configuration: config.modelConfiguration(softmax: softmax), seed: 1)
        var rng = Xoshiro256StarStar(seed: 7)
        let count = s.N * s.T
        let ids = (0..<count).map { _ in Int32(rng.nextInt(below: s.V)) }
        let zipf = ZipfSampler(count: s.V)
        let targets = (0..<count).map { _ in config.isWordLevel ? zipf.sample(&rng) : Int32(rng.nextInt(below: s.V)) }
        let forwardFLOPs = config.forwardFLOPs(softmax: softmax, targets: targets)
        let parameters = model.parameters
        let sgd = SGD(learningRate: 0.1)

        func trainStep() throws {
            parameters.zeroGradients()
            _ = try model.lossAndGradients(ids: ids, targets: targets, batchSize: s.N)
            try sgd.step(parameters, gradientScale: clippingScale(norm: try gradientNorm(parameters), maxNorm: 0.25))
        }
        func forwardStep() throws { _ = try model.loss(ids: ids, targets: targets, batchSize: s.N) }

        for _ in 0..<max(warmup, 2) { try trainStep() }  // two steps size every buffer (the states ping-pong)
        let allocationsBefore = allocationCount()
        let train = try Self.time(trainStep, steps: steps, warmup: 0)
        let allocationsPerStep = allocationCount().map { after in Double(after - allocationsBefore!) / Double(steps) }
        let forward = try Self.time(forwardStep, steps: steps, warmup: warmup)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Result(
            trainMilliseconds: train.median, trainMinimum: train.minimum,
            forwardMilliseconds: forward.median, forwardMinimum: forward.minimum,
            trainGFLOPS: 3 * forwardFLOPs / (train.median * 1e6),
            forwardGFLOPS: forwardFLOPs / (forward.median * 1e6),
            peakResidentMiB: Double(usage.ru_maxrss) / 1024, trainingMiB: config.trainingBytes(softmax: softmax) / 1048576,
            tokens: s.tokens, forwardFLOPs: forwardFLOPs, trainingBytes: config.trainingBytes(softmax: softmax),
            cutoffs: model.configuration.cutoffs, allocationsPerTrainingStep: allocationsPerStep)
    }

    /// Median and minimum milliseconds of `body` over `steps` calls after `warmup` untimed ones.
    static func time(_ body: () throws -> Void, steps: Int, warmup: Int) throws -> (median: Double, minimum: Double) {
        for _ in 0..<warmup { try body() }
        var samples: [Double] = []
        samples.reserveCapacity(steps)  // no allocation between the timed steps
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        samples.sort()
        let median = samples.count % 2 == 1 ? samples[samples.count / 2]
            : (samples[samples.count / 2 - 1] + samples[samples.count / 2]) / 2
        return (median, samples[0])
    }
}

/// The physical limit the shares are taken against, and what one library call reaches.
struct SGEMMPeak {
    /// GFLOP/s of every thread running its own single-threaded 1024³ `cblas_sgemm` at once (own A, B and C, nothing
    /// shared): the machine's BLAS kernel on all the cores the library uses, with no split, packing or
    /// synchronisation of ours. NaN when the process has no `cblas_sgemm` to look up.
    var independent: Double
    /// GFLOP/s of one 1024³ product through the library's GEMM (split across its threads).
    var library: Double
    var threads: Int

    /// The independent figure where there is one, else the library's.
    var gflops: Double { independent.isFinite ? independent : library }
}

private typealias CBLASSgemm = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                               UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
                                               UnsafeMutablePointer<Float>?, Int32) -> Void

/// `cblas_sgemm` of the BLAS the library links, looked up at run time (the tool has no CBLAS header).
private let cblasSgemm: CBLASSgemm? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cblas_sgemm") else { return nil }
    return unsafeBitCast(symbol, to: CBLASSgemm.self)
}()

/// Both sgemm figures, best of 5 rounds after a warm-up.
func measureSGEMMPeak(threads: Int) throws -> SGEMMPeak {
    var rng = Xoshiro256StarStar(seed: 3)
    let n = 1024
    let a = try Tensor(shape: [n, n], scalars: (0..<n * n).map { _ in rng.nextFloat() - 0.5 })
    let b = try Tensor(shape: [n, n], scalars: (0..<n * n).map { _ in rng.nextFloat() - 0.5 })
    _ = try matmul(a, b)
    let (_, best) = try BenchRunner.time({ _ = try matmul(a, b) }, steps: 5, warmup: 0)
    let library = 2 * Double(n * n * n) / (best * 1e6)
    guard let sgemm = cblasSgemm else { return SGEMMPeak(independent: .nan, library: library, threads: threads) }
    // The library has set OpenBLAS to one thread (rnncore_threads() ran for the machine line), so each call below
    // runs on its caller's core alone.
    _ = rnncore_threads()
    let parts = max(threads, 1), size = n * n
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * size * parts)
    defer { buffer.deallocate() }
    for i in buffer.indices { buffer[i] = rng.nextFloat() - 0.5 }
    nonisolated(unsafe) let base = buffer.baseAddress!
    let product: @Sendable (Int) -> Void = { part in
        let a = base + 3 * size * part, b = a + size, c = b + size
        sgemm(101, 111, 111, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, c, Int32(n))  // row-major, no transposes
    }
    var fastest = Double.infinity
    for round in 0..<6 {
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: parts, execute: product)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if round > 0 { fastest = min(fastest, seconds) }  // round 0 warms up
    }
    return SGEMMPeak(independent: 2 * Double(n * n * n) * Double(parts) / fastest / 1e9, library: library,
                     threads: threads)
}

/// The counter of benchmarks/malloc_count.c, looked up once (dlsym itself may allocate).
private let allocationCounter: (@convention(c) () -> UInt64)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "rnncore_bench_allocation_count") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) () -> UInt64).self)
}()

/// The malloc-family call count of benchmarks/malloc_count.c when it is preloaded, else nil.
func allocationCount() -> UInt64? { allocationCounter?() }

/// Draws ids in 0..<count with probability ∝ 1/(id + 1) (Zipf's law with exponent 1, close to word frequencies in
/// English text ordered by frequency), by inverting the cumulative distribution.
struct ZipfSampler {
    private var cumulative: [Double]

    init(count: Int) {
        var total = 0.0
        cumulative = (0..<count).map { k in total += 1 / Double(k + 1); return total }
        for i in cumulative.indices { cumulative[i] /= total }
    }

    func sample(_ rng: inout Xoshiro256StarStar) -> Int32 {
        let u = rng.nextDouble()
        var (lo, hi) = (0, cumulative.count - 1)
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] <= u { lo = mid + 1 } else { hi = mid }
        }
        return Int32(lo)
    }
}
