// `rnncore train`'s training checkpoints: saving every N batches, saving on Ctrl-C, and --resume.

import ArgumentParser
import Foundation
import CRNNCore
import RNNCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Train {
    /// The options a resumed run may be given; every setting comes from the training checkpoint's settings record.
    static let optionsAllowedWhenResuming: Set<String> = [
        "--resume", "--train", "--valid", "--test", "--out", "--plot", "--checkpoint", "--checkpoint-every", "--json",
        "--max-memory", "--print-settings",
    ]

    /// The `__metadata__` key under which the tool keeps, in a training checkpoint, what the library's settings
    /// record does not hold: the paths of the texts and the environment (``TrainRunRecord``).
    static let runMetadataKey = "rnncore_train_run"

    /// Runs this rank's part of the command (every part with one rank). Only rank 0 checks, locks and writes the
    /// output files; every rank reads the inputs.
    func run(ranks: TrainRanks) throws {
        // The files named on the command line are checked before anything is read or written.
        if ranks.isLeader { try files(resuming: resume).check() }
        guard let resume else {
            let settings = self.settings
            if printSettings { return ranks.isLeader ? print(try Self.settingsJSON(settings)) : () }
            let files = files(resuming: nil)
            let locks = ranks.isLeader ? try files.lockOutputs() : []
            defer { locks.forEach { $0.release() } }
            return try execute(settings: settings, resuming: nil, files: files, ranks: ranks)
        }
        // Every model and training setting comes from the checkpoint's settings record; this command line only
        // says where the texts are (when they moved) and where files are written (a checkpoint is data, not
        // instructions: paths it stores for outputs are ignored).
        let url = URL(fileURLWithPath: resume)
        let saved = try TrainingCheckpoint.load(from: url)
        if printSettings { return ranks.isLeader ? print(try Self.settingsJSON(saved.settings)) : () }
        let record = saved.metadata[Self.runMetadataKey].flatMap {
            try? JSONDecoder().decode(TrainRunRecord.self, from: Data($0.utf8))
        }
        if record == nil && train == nil {
            throw ValidationError("\(resume) does not say which texts its run was trained on (it has no \(Self.runMetadataKey) metadata: it was not written by rnncore train); give them with --train, --valid and --test")
        }
        if let savedRanks = record?.ranks ?? (record == nil ? nil : 1), savedRanks != ranks.size {
            throw ValidationError("\(resume) was saved by a run on \(savedRanks) rank\(savedRanks == 1 ? "" : "s"), this one has \(ranks.size): resume it with \(savedRanks == 1 ? "a single process (no mpirun)" : "mpirun -np \(savedRanks)") (its streams are shared among the ranks)")
        }
        let environment = TrainRunRecord.currentEnvironment
        if ranks.isLeader, let saved = record?.environment, saved != environment {
            writeError("warning: \(resume) was saved with \(saved.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")), "
                       + "this run has \(environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")): "
                       + "it continues, but not bit for bit as the original run would have\n")
        }
        var command = self
        command.train = train ?? record?.paths["train"]
        command.valid = valid ?? record?.paths["valid"]
        command.test = test ?? record?.paths["test"]
        try command.validate()
        let files = command.files(resuming: resume)
        if ranks.isLeader { try files.check() }
        let locks = ranks.isLeader ? try files.lockOutputs() : []
        defer { locks.forEach { $0.release() } }
        try command.execute(settings: saved.settings, resuming: ResumePoint(checkpoint: saved, path: resume),
                            files: files, ranks: ranks)
    }

    /// The settings record as one line of JSON with sorted keys (`--print-settings`).
    static func settingsJSON(_ settings: TrainingSettings) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(settings), as: UTF8.self)
    }

    /// Checks the checkpoint options (called from `validate()`).
    func validateCheckpointOptions() throws {
        if let checkpointEvery, checkpointEvery < 0 { throw ValidationError("--checkpoint-every must be 0 or positive") }
        if resume != nil {
            let given = CommandLine.arguments.dropFirst().compactMap { argument -> String? in
                guard argument.hasPrefix("--") else { return nil }
                return String(argument.split(separator: "=", maxSplits: 1)[0])
            }
            if let option = given.first(where: { !Self.optionsAllowedWhenResuming.contains($0) }) {
                throw ValidationError("\(option) cannot be given with --resume: the model, optimizer and training settings come from the training checkpoint (only \(Self.optionsAllowedWhenResuming.sorted().joined(separator: ", ")) may)")
            }
        }
    }

    /// Where training checkpoints go: --checkpoint, else next to --out (`m.safetensors` → `m.resume.safetensors`),
    /// else `rnncore-interrupted.safetensors` in the current directory.
    var checkpointPath: String {
        if let checkpoint { return checkpoint }
        if let out {
            let stem = out.hasSuffix(".safetensors") ? String(out.dropLast(".safetensors".count)) : out
            return stem + ".resume.safetensors"
        }
        return "rnncore-interrupted.safetensors"
    }

    /// Trains to the end, saving a training checkpoint every `--checkpoint-every` batches and at the end of every
    /// epoch (with `--checkpoint-every`), and on Ctrl-C, after which it exits with status 130. A NaN or infinite
    /// loss stops with an error that names the last checkpoint, which is never overwritten by a diverged state.
    func runTraining(_ trainer: Trainer, data: TrainingData, resumed: ResumePoint?, files: TrainFiles,
                     ranks: TrainRanks, log: (String) -> Void,
                     progress: (TrainingEvent) -> Void) throws -> [EpochReport] {
        let train = data.splits.train.ids
        let valid = data.splits.valid.count >= 2 ? data.splits.valid.ids : nil
        if let resumed {
            try resumed.checkpoint.verify(trainingData: train, validationData: valid)
            guard data.splits.vocabulary == resumed.checkpoint.vocabulary else {
                throw ValidationError("the vocabulary of \(data.description) is not the one of the run in \(resumed.path): give the original --train text")
            }
            for report in trainer.reports { progress(.epochEnded(report)) }
        }
        // The checked (and locked) checkpoint path, or, when only Ctrl-C can save one, a free path chosen then.
        let checked = files.output("--checkpoint")?.path
        let every = checkpointEvery ?? 0
        let metadata = [Self.runMetadataKey: try runRecord(ranks: ranks.size).json()]
        var lastSaved = resumed.map { (path: $0.path, epoch: $0.checkpoint.epoch, batch: $0.checkpoint.batch) }
        let interruption = Interruption()
        defer { interruption.stop() }
        while true {
            do {
                // The ranks stop together: a Ctrl-C seen by any of them stops all at the same batch.
                try trainer.train(on: train, validation: valid, progress: progress) {
                    ranks.anyRank(interruption.isRequested) || (every > 0 && (trainer.batch == 0 || trainer.step % every == 0))
                }
            } catch {
                throw TrainingStopped(error: error, lastCheckpoint: lastSaved)
            }
            if trainer.isFinished { return trainer.reports }
            let path = checked ?? interruptionCheckpointPath
            do {
                try trainer.saveTrainingState(to: URL(fileURLWithPath: path), vocabulary: data.splits.vocabulary,
                                              metadata: metadata)
            } catch {
                throw TrainingStopped(error: error, lastCheckpoint: lastSaved)
            }
            // Every rank takes part (the state of all streams is gathered); rank 0 alone writes.
            lastSaved = (path, trainer.epoch, trainer.batch)
            if ranks.anyRank(interruption.isRequested) {
                if isatty(STDERR_FILENO) != 0 { writeError("\r\u{1B}[2K") }  // end the live progress line
                log("interrupted in epoch \(trainer.epoch), after batch \(trainer.batch): training state saved to \(path)")
                log("resume with: rnncore train --resume \(path)")
                throw ExitCode(130)
            }
        }
    }

    /// What a training checkpoint keeps of this command besides the settings record: the absolute paths of the
    /// texts it reads, so that --resume works from any directory, and the environment. Output paths are not kept:
    /// a resumed run writes only where its own command line says.
    private func runRecord(ranks: Int) -> TrainRunRecord {
        var paths: [String: String] = [:]
        for (key, value) in [("train", train), ("valid", valid), ("test", test)] {
            if let value { paths[key] = absolutePath(value) }
        }
        return TrainRunRecord(paths: paths, environment: TrainRunRecord.currentEnvironment, ranks: ranks)
    }
}

/// A run to continue: its checkpoint and the file it came from.
struct ResumePoint {
    var checkpoint: TrainingCheckpoint
    var path: String
}

/// What `rnncore train` keeps in its training checkpoints beside the settings record.
struct TrainRunRecord: Codable {
    /// The absolute paths of the texts the run reads: train, valid, test (any other key is ignored).
    var paths: [String: String]
    /// What else decides the bits of the results: the library's thread count (``rnncore_threads()``, from
    /// RNNCORE_NUM_THREADS, OPENBLAS_NUM_THREADS or the processors) and the number of processors. Older files hold
    /// OPENBLAS_NUM_THREADS instead of the thread count; they resume with the warning below.
    var environment: [String: String]?
    /// K, the number of ranks (processes of `mpirun -np K`) the run trains on; nil: 1.
    var ranks: Int?

    static var currentEnvironment: [String: String] {
        ["threads": String(rnncore_threads()), "processors": String(ProcessInfo.processInfo.activeProcessorCount)]
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// Training stopped by an error; says which training checkpoint survives.
struct TrainingStopped: Error, CustomStringConvertible {
    var error: any Error
    var lastCheckpoint: (path: String, epoch: Int, batch: Int)?

    var description: String {
        guard let last = lastCheckpoint else { return "\(error)" }
        let kept = ". The last training checkpoint, \(last.path) (epoch \(last.epoch), after batch \(last.batch)), was kept"
        if case .invalidState(let message)? = error as? RNNCoreError, message.contains("non-finite") {
            // Resuming repeats the same computation bit for bit, divergence included.
            return "\(error)" + kept + "; resuming it would diverge again the same way"
        }
        return "\(error)" + kept + ": continue with rnncore train --resume \(last.path)"
    }
}

/// Ctrl-C while training: the first asks the training loop to stop at the next batch boundary (the loop polls
/// ``isRequested``); a second one quits at once.
///
/// SIGINT is delivered through a Dispatch signal source, so nothing runs inside a signal handler: the source's
/// handler is ordinary code on a Dispatch queue.
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)  // the source sees the signal; the default action (termination) must not
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: DispatchQueue(label: "rnncore.interrupt"))
        source.setEventHandler { [unowned self] in
            lock.lock()
            count += 1
            let first = count == 1
            lock.unlock()
            if first {
                writeError("\ninterrupted: stopping after this batch to save a training checkpoint (Ctrl-C again to quit without saving)\n")
            } else {
                signal(SIGINT, SIG_DFL)
                kill(getpid(), SIGINT)
            }
        }
        source.resume()
    }

    /// Whether Ctrl-C was pressed.
    var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return count > 0
    }

    /// Gives SIGINT its default action back.
    func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}

/// `path` made absolute against the current directory.
func absolutePath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}
