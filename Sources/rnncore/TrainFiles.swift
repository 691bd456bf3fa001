// The files one `rnncore train` run reads and writes, checked before anything is read or written: no output may be
// an input or another output, every output location must be writable, a path the tool chose itself never replaces
// a file RNNCore did not write, and two runs never write the same files at once.

import ArgumentParser
import Foundation
import RNNCore

/// The files of one training run.
struct TrainFiles {
    /// A path and the option that named it (`"--out"`), or the option it stands in for when the tool chose it.
    struct Entry {
        var option: String
        var path: String
        /// Whether the tool chose the path (a default), rather than the user's command line.
        var isDefault = false
    }

    /// What the run reads: `--train`, `--valid`, `--test`, `--resume`.
    var inputs: [Entry]
    /// What the run writes: `--out`, `--plot`, `--checkpoint` (or its default).
    var outputs: [Entry]

    /// The output entry for `option`, if the run writes one.
    func output(_ option: String) -> Entry? { outputs.first { $0.option == option } }

    /// Refuses a run whose files collide, whose outputs cannot be written, or whose default outputs would replace
    /// a file that RNNCore did not write. Reads and writes nothing but file metadata and safetensors headers.
    func check() throws {
        for (i, output) in outputs.enumerated() {
            for input in inputs where OutputFile.isSameFile(output.path, input.path) {
                // A resumed run goes on in the checkpoint it came from: that one reuse is the point.
                if output.option == "--checkpoint" && input.option == "--resume" { continue }
                throw ValidationError(
                    "\(Self.naming(output)) and \(Self.naming(input)) are the same file: "
                    + "writing \(Self.what(output.option)) there would destroy \(Self.what(input.option)). Choose another \(output.option).")
            }
            for other in outputs[..<i] where OutputFile.isSameFile(output.path, other.path) {
                throw ValidationError(
                    "\(Self.naming(other)) and \(Self.naming(output)) are the same file: one would overwrite the other. Choose different paths.")
            }
        }
        for output in outputs {
            do {
                try OutputFile.checkWritable(atPath: output.path)
            } catch {
                throw ValidationError("\(output.option)\(output.isDefault ? " (default)" : ""): \(error)")
            }
            if output.isDefault, let foreign = Self.foreignFileDescription(output.path) {
                throw ValidationError(
                    "\(output.path) exists and \(foreign): \(Self.what(output.option)) would replace it. "
                    + "Move that file away or pass \(output.option) with another path.")
            }
        }
    }

    /// Takes the advisory lock of every file the run writes through its checkpoint or model (released when the
    /// process ends, however it ends), and removes temporary files that killed runs left beside them.
    func lockOutputs() throws -> [OutputFileLock] {
        var locks: [OutputFileLock] = []
        for output in outputs where output.option != "--plot" {
            do {
                locks.append(try OutputFile.lock(forPath: output.path))
            } catch {
                throw ValidationError("\(error): another rnncore train is writing \(output.path) (\(output.option)); wait for it to end or choose another path")
            }
        }
        for output in outputs { OutputFile.removeStaleTemporaries(forPath: output.path) }
        return locks
    }

    /// `--out (m.safetensors)`, or `the default training checkpoint (rnncore-interrupted.safetensors)`.
    static func naming(_ entry: Entry) -> String {
        entry.isDefault ? "the default \(entry.option) path (\(entry.path))" : "\(entry.option) (\(entry.path))"
    }

    /// What an option's file holds, for messages.
    static func what(_ option: String) -> String {
        switch option {
        case "--out": "the model"
        case "--plot": "the learning curve"
        case "--checkpoint": "the training checkpoint"
        case "--train": "the training text"
        case "--valid": "the validation text"
        case "--test": "the test text"
        case "--resume": "the checkpoint to resume"
        default: "its file"
        }
    }

    /// Why the file at `path` is not one RNNCore wrote (`nil` when nothing is there or RNNCore wrote it): its
    /// safetensors header must carry the `format` metadata of a model or a training checkpoint.
    static func foreignFileDescription(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return FileManager.default.fileExists(atPath: path) ? "cannot be read" : nil
        }
        defer { try? handle.close() }
        guard let prefix = try? handle.read(upToCount: 8), prefix.count == 8 else {
            return "is not a safetensors file written by RNNCore"
        }
        let length = prefix.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length > 0, length <= UInt64(SafeTensorsFile.maximumHeaderByteCount),
              let header = try? handle.read(upToCount: Int(length)), header.count == Int(length),
              let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
              let metadata = object[SafeTensorsFile.metadataKey] as? [String: Any],
              let format = metadata["format"] as? String,
              [RNNLanguageModel.checkpointFormat, TrainingCheckpoint.format].contains(format)
        else {
            return "is not a model or training checkpoint written by RNNCore"
        }
        return nil
    }
}

extension Train {
    /// The files of this run. `resuming` is the training checkpoint being continued, if any: its checkpoint is
    /// written back there unless `--checkpoint` says otherwise, and without `--out` the model goes next to it.
    func files(resuming: String?) -> TrainFiles {
        var inputs: [TrainFiles.Entry] = []
        for (option, path) in [("--train", train), ("--valid", valid), ("--test", test), ("--resume", resuming)] {
            if let path { inputs.append(.init(option: option, path: path)) }
        }
        var outputs: [TrainFiles.Entry] = []
        if let out {
            outputs.append(.init(option: "--out", path: out))
        } else if let resuming {
            outputs.append(.init(option: "--out", path: Self.modelPath(besideCheckpoint: resuming), isDefault: true))
        }
        if let plot { outputs.append(.init(option: "--plot", path: plot)) }
        // Without --checkpoint-every only Ctrl-C writes a training checkpoint; its default path is then chosen at
        // that moment (``interruptionCheckpointPath``) and need not be checked or locked now.
        if checkpoint != nil || resuming != nil || (checkpointEvery ?? 0) > 0 {
            outputs.append(.init(option: "--checkpoint", path: checkpoint ?? resuming ?? checkpointPath,
                                 isDefault: checkpoint == nil && resuming == nil))
        }
        return TrainFiles(inputs: inputs, outputs: outputs)
    }

    /// Where a Ctrl-C saves the training checkpoint of a run that has no checked checkpoint path: the default
    /// path, or, when something is already there, the first free `NAME-2.resume.safetensors`, … beside it, so an
    /// interruption never replaces an earlier file.
    var interruptionCheckpointPath: String {
        let path = checkpointPath
        guard FileManager.default.fileExists(atPath: path) else { return path }
        let url = URL(fileURLWithPath: path)
        return Self.unusedPath(in: url.deletingLastPathComponent().path,
                               stem: url.deletingPathExtension().lastPathComponent, extension: "safetensors")
    }

    /// Where a resumed run without `--out` writes its model: `m.resume.safetensors` → `m.safetensors`, any other
    /// `x.safetensors` → `x.model.safetensors`.
    static func modelPath(besideCheckpoint checkpoint: String) -> String {
        let stem = checkpoint.hasSuffix(".safetensors") ? String(checkpoint.dropLast(".safetensors".count)) : checkpoint
        if stem.hasSuffix(".resume") { return String(stem.dropLast(".resume".count)) + ".safetensors" }
        return stem + ".model.safetensors"
    }

    /// Saves the trained model at `path`; when that fails (disk full, permissions changed during the run), saves it
    /// beside the training checkpoint, else in the current directory, else in the temporary directory, and throws
    /// an error that says where the model is.
    func saveModel(_ model: RNNLanguageModel, vocabulary: Vocabulary, to path: String, checkpoint: String,
                   log: (String) -> Void) throws {
        do {
            try model.save(to: URL(fileURLWithPath: path), vocabulary: vocabulary)
            log("model written to \(path)")
            return
        } catch {
            let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            let directories = [URL(fileURLWithPath: checkpoint).deletingLastPathComponent().path,
                               FileManager.default.currentDirectoryPath, NSTemporaryDirectory()]
            var tried: [String] = []
            for directory in directories {
                let rescue = Self.unusedPath(in: directory, stem: base + ".rescued", extension: "safetensors")
                tried.append(rescue)
                if (try? model.save(to: URL(fileURLWithPath: rescue), vocabulary: vocabulary)) != nil {
                    throw ValidationError("cannot write the model to \(path): \(error). The trained model was saved to \(rescue) instead.")
                }
            }
            throw ValidationError("cannot write the model to \(path): \(error); saving it to \(tried.joined(separator: ", ")) failed too. The weights are lost, but the last training checkpoint (\(checkpoint), if one was saved) is intact.")
        }
    }

    /// `directory/stem.ext`, or `directory/stem-2.ext`, … whichever does not exist yet.
    static func unusedPath(in directory: String, stem: String, extension ext: String) -> String {
        let base = URL(fileURLWithPath: directory)
        var candidate = base.appendingPathComponent("\(stem).\(ext)").path
        var n = 2
        while FileManager.default.fileExists(atPath: candidate) {
            candidate = base.appendingPathComponent("\(stem)-\(n).\(ext)").path
            n += 1
        }
        return candidate
    }
}
