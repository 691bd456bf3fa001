import Foundation
import Testing
import RNNCore

@Suite("SafeTensors: writing and reading")
struct SafeTensorsTests {
    static func sample() -> SafeTensorsFile {
        var generator = Xoshiro256StarStar(seed: 12)
        let weights = (0..<12).map { _ in generator.nextGaussian() }
        return SafeTensorsFile(
            tensors: [
                "rnn.0.wx": NamedTensor(shape: [3, 4], values: weights),
                "embedding.weight": NamedTensor(shape: [2, 2], values: [Float]([1, -2.5, .infinity, -0.0])),
                "bias": NamedTensor(shape: [4], values: [Float]([0.1, 0.2, 0.3, 0.4])),
                "scalar": NamedTensor(shape: [], values: [Float]([42])),
                "empty": NamedTensor(shape: [0, 5], values: [Float]()),
                "step": NamedTensor(shape: [1], values: [Int32(123_456)]),
                "name with \"quotes\" and \\ and é": NamedTensor(shape: [2], values: [Int32.min, Int32.max]),
            ],
            metadata: ["format": "rnncore-lm", "configuration": #"{"hidden":128,"layers":[1,2]}"#, "note": "line\nbreak\ttab\u{01}"])
    }

    @Test("Write then read gives back the same tensors and metadata, bit for bit")
    func roundTrip() throws {
        let scratch = try DataIOScratchDirectory()
        let url = scratch.file("model.safetensors")
        let original = Self.sample()
        try original.write(to: url)
        let read = try SafeTensorsFile.read(from: url)
        #expect(read == original)
        #expect(read.tensors["embedding.weight"]!.floats!.map(\.bitPattern) == original.tensors["embedding.weight"]!.floats!.map(\.bitPattern))
        #expect(try Array(Data(contentsOf: url)) == original.serialized())
        #expect(try scratch.entries() == ["model.safetensors"])
    }

    @Test("NaN payloads survive the round trip")
    func nan() throws {
        let patterns: [UInt32] = [0x7FC0_0000, 0xFFC0_0001, 0x7F80_0001]
        let file = SafeTensorsFile(tensors: ["n": NamedTensor(shape: [3], values: patterns.map(Float.init(bitPattern:)))])
        let read = try SafeTensorsFile(bytes: file.serialized())
        #expect(read.tensors["n"]!.floats!.map(\.bitPattern) == patterns)
    }

    @Test("Layout: little-endian length, space-padded header of 8k bytes, tensors sorted by name with contiguous offsets")
    func layout() throws {
        let bytes = try Self.sample().serialized()
        let length = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        #expect(length % 8 == 0)
        let headerBytes = Array(bytes[8..<(8 + Int(length))])
        let header = String(decoding: headerBytes, as: UTF8.self)
        #expect(header.hasPrefix("{"))
        #expect(header.trimmingCharacters(in: .init(charactersIn: " ")).hasSuffix("}"))
        #expect(!headerBytes.contains(0))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any])
        let metadata = try #require(json["__metadata__"] as? [String: String])
        #expect(metadata["format"] == "rnncore-lm")

        let names = json.keys.filter { $0 != "__metadata__" }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var expectedBegin = 0
        for name in names {
            let entry = try #require(json[name] as? [String: Any])
            let offsets = try #require(entry["data_offsets"] as? [Int])
            #expect(offsets[0] == expectedBegin)
            expectedBegin = offsets[1]
        }
        #expect(8 + Int(length) + expectedBegin == bytes.count)
        // Names appear in the header in sorted order.
        let positions = names.map { name in header.range(of: "\"\(name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\":")!.lowerBound }
        #expect(positions == positions.sorted())
        let bias = try #require(json["bias"] as? [String: Any])
        #expect(bias["dtype"] as? String == "F32")
        #expect(bias["shape"] as? [Int] == [4])
        #expect(bias["data_offsets"] as? [Int] == [0, 16])
    }

    @Test("Writing rejects a tensor named __metadata__ and leaves the existing file untouched")
    func reservedName() throws {
        let scratch = try DataIOScratchDirectory()
        let url = try scratch.write("previous contents", to: "model.safetensors")
        let file = SafeTensorsFile(tensors: ["__metadata__": NamedTensor(shape: [1], values: [Float(1)])])
        #expect(throws: CheckpointError.reservedName("__metadata__")) { try file.write(to: url) }
        #expect(try String(contentsOf: url, encoding: .utf8) == "previous contents")
        #expect(try scratch.entries() == ["model.safetensors"])
    }

    @Test("A directory at the target is refused and nothing is created")
    func directoryTargetIsRefused() throws {
        let scratch = try DataIOScratchDirectory()
        let target = scratch.file("occupied")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("child"), withIntermediateDirectories: true)
        #expect {
            try Self.sample().write(to: target)
        } throws: { error in
            guard case .fileSystem(let path, let reason)? = error as? CheckpointError else { return false }
            return path == target.path && reason.contains("is a directory, not a regular file")
        }
        #expect(try scratch.entries() == ["occupied"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["child"])
    }

    @Test("Writing into a missing directory is a file-system error")
    func missingDirectory() throws {
        let scratch = try DataIOScratchDirectory()
        let url = scratch.file("no/such/dir/model.safetensors")
        #expect(throws: CheckpointError.self) { try Self.sample().write(to: url) }
    }

    @Test("Overwriting replaces the previous file completely")
    func overwrite() throws {
        let scratch = try DataIOScratchDirectory()
        let url = scratch.file("model.safetensors")
        try Self.sample().write(to: url)
        let small = SafeTensorsFile(tensors: ["x": NamedTensor(shape: [1], values: [Float(3)])])
        try small.write(to: url)
        #expect(try SafeTensorsFile.read(from: url) == small)
        #expect(try scratch.entries() == ["model.safetensors"])
    }

    @Test("Reading a missing file or a directory gives a clear error")
    func readErrors() throws {
        let scratch = try DataIOScratchDirectory()
        let missing = scratch.file("missing.safetensors")
        #expect(throws: CheckpointError.fileNotFound(path: missing.path)) { try SafeTensorsFile.read(from: missing) }
        #expect(throws: CheckpointError.self) { try SafeTensorsFile.read(from: scratch.url) }
    }

    @Test("floats(named:shape:) checks presence, shape and dtype")
    func typedAccess() throws {
        let file = Self.sample()
        #expect(try file.floats(named: "bias", shape: [4]) == [0.1, 0.2, 0.3, 0.4])
        #expect(try file.floats(named: "bias").count == 4)
        #expect(throws: CheckpointError.missingTensor(name: "nope")) { try file.floats(named: "nope") }
        #expect(throws: CheckpointError.shapeMismatch(name: "bias", expected: [2, 2], actual: [4])) {
            try file.floats(named: "bias", shape: [2, 2])
        }
        #expect(throws: CheckpointError.dtypeMismatch(name: "step", expected: "F32", actual: "I32")) { try file.floats(named: "step") }
        #expect(file.tensors["step"]?.int32s == [123_456])
        #expect(file.tensors["step"]?.floats == nil)
        #expect(file.tensors["step"]?.dtype == .int32)
    }
}

/// Cross-checks with an independent reader and writer in Python (only `struct`, `json` and NumPy), following the
/// safetensors rules: little-endian u64 length, JSON header without duplicate keys, contiguous offsets from 0.
@Suite("SafeTensors: interoperability with a Python reader and writer", .enabled(if: PythonWithNumPy.isAvailable))
struct SafeTensorsPythonTests {
    static let reader = #"""
        import sys, struct, json
        import numpy as np
        raw = open(sys.argv[1], "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        assert n % 8 == 0, "header not padded to 8"
        def no_duplicates(pairs):
            keys = [k for k, _ in pairs]
            assert len(keys) == len(set(keys)), "duplicate keys"
            return dict(pairs)
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
        metadata = header.pop("__metadata__", {})
        assert all(isinstance(v, str) for v in metadata.values())
        data = raw[8 + n:]
        names = list(header.keys())
        assert names == sorted(names, key=lambda s: s.encode("utf-8")), "tensors not sorted by name"
        position, tensors = 0, {}
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
            begin, end = info["data_offsets"]
            assert begin == position and end >= begin, "offsets not contiguous"
            dtype = {"F32": "<f4", "I32": "<i4"}[info["dtype"]]
            count = int(np.prod(info["shape"], dtype=np.int64))
            assert end - begin == count * 4, "wrong byte length"
            array = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"])
            tensors[name] = {"dtype": info["dtype"], "shape": list(array.shape), "bits": array.view("<u4").ravel().tolist()}
            position = end
        assert position == len(data), "trailing bytes"
        print(json.dumps({"metadata": metadata, "tensors": tensors}))
        """#

    static let writer = #"""
        import sys, struct, json
        import numpy as np
        tensors = {
            "w": np.arange(6, dtype="<f4").reshape(2, 3) / 4,
            "ids": np.array([3, -1, 7], dtype="<i4"),
            "s": np.array(2.5, dtype="<f4"),
        }
        header, chunks, offset = {}, [], 0
        for name in ["w", "s", "ids"]:  # not sorted, metadata last, no padding: still valid
            blob = tensors[name].tobytes()
            header[name] = {"dtype": "F32" if tensors[name].dtype.kind == "f" else "I32",
                            "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
            chunks.append(blob)
            offset += len(blob)
        header["__metadata__"] = {"source": "numpy", "unicode": "\u00e9\u4e2d"}
        text = json.dumps(header, indent=1).encode("utf-8")
        open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
        """#

    @Test("Files written by RNNCore pass the Python reader with identical values")
    func pythonReadsOurFiles() throws {
        let scratch = try DataIOScratchDirectory()
        let url = scratch.file("model.safetensors")
        let original = SafeTensorsTests.sample()
        try original.write(to: url)
        let output = try PythonWithNumPy.run(Self.reader, arguments: [url.path])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(parsed["metadata"] as? [String: String] == original.metadata)
        let tensors = try #require(parsed["tensors"] as? [String: [String: Any]])
        #expect(Set(tensors.keys) == Set(original.tensors.keys))
        for (name, tensor) in original.tensors {
            let python = try #require(tensors[name])
            #expect(python["dtype"] as? String == tensor.dtype.rawValue)
            #expect(python["shape"] as? [Int] == tensor.shape)
            let bits = (python["bits"] as? [NSNumber])?.map { $0.uint32Value }
            switch tensor.values {
            case .float32(let values): #expect(bits == values.map(\.bitPattern))
            case .int32(let values): #expect(bits == values.map { UInt32(bitPattern: $0) })
            }
        }
    }

    @Test("Files written by the Python writer are read by RNNCore")
    func weReadPythonFiles() throws {
        let scratch = try DataIOScratchDirectory()
        let url = scratch.file("numpy.safetensors")
        _ = try PythonWithNumPy.run(Self.writer, arguments: [url.path])
        let file = try SafeTensorsFile.read(from: url)
        #expect(file.tensors["w"] == NamedTensor(shape: [2, 3], values: [Float]([0, 0.25, 0.5, 0.75, 1, 1.25])))
        #expect(file.tensors["ids"] == NamedTensor(shape: [3], values: [Int32(3), -1, 7]))
        #expect(file.tensors["s"] == NamedTensor(shape: [], values: [Float(2.5)]))
        #expect(file.metadata == ["source": "numpy", "unicode": "é中"])
    }
}

/// Runs a `python3` that has NumPy, when the machine has one (the first on `PATH`, then the usual places).
enum PythonWithNumPy {
    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/python3" } + ["/usr/local/bin/python3", "/usr/bin/python3"]
        return candidates.first { candidate in
            FileManager.default.isExecutableFile(atPath: candidate)
                && (try? run("import numpy", arguments: [], executable: candidate)) != nil
        }
    }()

    static var isAvailable: Bool { executable != nil }

    struct Failure: Error, CustomStringConvertible {
        let status: Int32
        let output: String
        var description: String { "python3 exited with \(status): \(output)" }
    }

    /// Runs `script` with `arguments` and returns its standard output; throws when it exits non-zero.
    static func run(_ script: String, arguments: [String], executable: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? Self.executable ?? "/usr/bin/python3")
        process.arguments = ["-c", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw Failure(status: process.terminationStatus, output: text) }
        return text
    }
}
