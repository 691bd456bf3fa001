import Testing
import RNNCore

/// One malformed file, built by hand, and the error reading it must give.
struct CorruptSafeTensors: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let expected: CheckpointError

    var testDescription: String { label }

    /// A file whose header is `header` (its UTF-8 bytes), prefixed by `declaredLength` or the true length.
    init(_ label: String, header: String, data: [UInt8] = [], declaredLength: UInt64? = nil, expected: CheckpointError) {
        self.init(label, headerBytes: Array(header.utf8), data: data, declaredLength: declaredLength, expected: expected)
    }

    init(_ label: String, headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil, expected: CheckpointError) {
        let length = declaredLength ?? UInt64(headerBytes.count)
        self.label = label
        self.bytes = withUnsafeBytes(of: length.littleEndian) { Array($0) } + headerBytes + data
        self.expected = expected
    }

    init(_ label: String, raw: [UInt8], expected: CheckpointError) {
        self.label = label
        self.bytes = raw
        self.expected = expected
    }
}

/// `{"dtype":"F32","shape":[...],"data_offsets":[b,e]}`.
private func entry(_ shape: String, _ begin: Int, _ end: Int, dtype: String = "F32") -> String {
    #"{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[\#(begin),\#(end)]}"#
}

private let four = [UInt8](repeating: 0, count: 4)
private let eight = [UInt8](repeating: 0, count: 8)
private let twelve = [UInt8](repeating: 0, count: 12)

@Suite("SafeTensors: malformed files")
struct SafeTensorsCorruptionTests {
    static let cases: [CorruptSafeTensors] = [
        // Length prefix.
        .init("empty file", raw: [], expected: .fileTooShort(byteCount: 0)),
        .init("seven bytes", raw: [2, 0, 0, 0, 0, 0, 0], expected: .fileTooShort(byteCount: 7)),
        .init("header above the limit", header: "{}", declaredLength: 100_000_001,
              expected: .headerTooLarge(byteCount: 100_000_001, limit: 100_000_000)),
        .init("header length UInt64.max", header: "{}", declaredLength: .max,
              expected: .headerTooLarge(byteCount: .max, limit: 100_000_000)),
        .init("header beyond the file", header: "{}", declaredLength: 64,
              expected: .headerBeyondFileEnd(headerByteCount: 64, fileByteCount: 10)),
        .init("header one byte beyond the file", header: "{} ", data: [], declaredLength: 4,
              expected: .headerBeyondFileEnd(headerByteCount: 4, fileByteCount: 11)),
        // Header text.
        .init("header not UTF-8", headerBytes: Array(#"{"a"#.utf8) + [0xFF] + Array(#"":1}"#.utf8),
              expected: .headerNotUTF8(byteOffset: 11)),
        .init("header with a truncated UTF-8 sequence", headerBytes: Array("{}".utf8) + [0xE2, 0x82],
              expected: .headerNotUTF8(byteOffset: 10)),
        .init("header not JSON", header: #"{"a": }"#, expected: .headerNotJSON(byteOffset: 14, reason: "unexpected character")),
        .init("empty header", header: "", expected: .headerNotJSON(byteOffset: 8, reason: "unexpected end of input")),
        .init("trailing garbage after the object", header: "{} x",
              expected: .headerNotJSON(byteOffset: 11, reason: "unexpected data after the JSON value")),
        .init("padding with NUL bytes", headerBytes: Array("{}".utf8) + [0, 0],
              expected: .headerNotJSON(byteOffset: 10, reason: "unexpected data after the JSON value")),
        .init("unterminated string", header: #"{"abc"#, expected: .headerNotJSON(byteOffset: 13, reason: "unterminated string")),
        .init("lone surrogate escape", header: #"{"\ud800x": 1}"#, expected: .headerNotJSON(byteOffset: 16, reason: "lone high surrogate")),
        .init("raw control character in a string", header: "{\"a\tb\": 1}",
              expected: .headerNotJSON(byteOffset: 11, reason: "control character in string")),
        .init("nesting deeper than 64 levels", header: #"{"a":"# + String(repeating: "[", count: 70),
              expected: .headerNotJSON(byteOffset: 8 + 5 + 63, reason: "nesting deeper than 64 levels")),
        .init("leading zero in a number", header: #"{"a": 01}"#,
              expected: .headerNotJSON(byteOffset: 15, reason: "expected ',' or '}'")),
        .init("header is an array", header: "[]", expected: .headerNotObject),
        .init("header is a string", header: #""x""#, expected: .headerNotObject),
        .init("header is a number", header: "8", expected: .headerNotObject),
        // Names and metadata.
        .init("duplicate tensor names", header: #"{"a":\#(entry("[1]", 0, 4)),"a":\#(entry("[1]", 4, 8))}"#, data: eight,
              expected: .duplicateName("a")),
        .init("duplicate names spelled differently", header: #"{"a":\#(entry("[1]", 0, 4)),"\u0061":\#(entry("[1]", 4, 8))}"#,
              data: eight, expected: .duplicateName("a")),
        .init("duplicate __metadata__", header: #"{"__metadata__":{},"__metadata__":{}}"#, expected: .duplicateName("__metadata__")),
        .init("metadata not an object", header: #"{"__metadata__":["x"]}"#,
              expected: .invalidMetadata(reason: "it is an array, not an object")),
        .init("metadata value not a string", header: #"{"__metadata__":{"epoch":3}}"#,
              expected: .invalidMetadata(reason: #"the value of "epoch" is a number, not a string"#)),
        .init("metadata value null", header: #"{"__metadata__":{"k":null}}"#,
              expected: .invalidMetadata(reason: #"the value of "k" is null, not a string"#)),
        .init("duplicate metadata key", header: #"{"__metadata__":{"k":"1","k":"2"}}"#,
              expected: .invalidMetadata(reason: #"the key "k" appears twice"#)),
        // Entries.
        .init("entry not an object", header: #"{"a":3}"#, expected: .invalidEntry(name: "a", reason: "the entry is a number, not an object")),
        .init("missing dtype", header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: four,
              expected: .invalidEntry(name: "a", reason: #"missing field "dtype""#)),
        .init("missing shape", header: #"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: four,
              expected: .invalidEntry(name: "a", reason: #"missing field "shape""#)),
        .init("missing data_offsets", header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: four,
              expected: .invalidEntry(name: "a", reason: #"missing field "data_offsets""#)),
        .init("unknown field", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offset":0}}"#, data: four,
              expected: .invalidEntry(name: "a", reason: #"unknown field "offset""#)),
        .init("duplicate field", header: #"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four,
              expected: .invalidEntry(name: "a", reason: #"the field "dtype" appears twice"#)),
        .init("dtype not a string", header: #"{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, data: four,
              expected: .invalidEntry(name: "a", reason: #""dtype" is a number, not a string"#)),
        .init("unsupported dtype F16", header: #"{"a":\#(entry("[2]", 0, 4, dtype: "F16"))}"#, data: four,
              expected: .unsupportedDType(name: "a", dtype: "F16")),
        .init("lowercase dtype", header: #"{"a":\#(entry("[1]", 0, 4, dtype: "f32"))}"#, data: four,
              expected: .unsupportedDType(name: "a", dtype: "f32")),
        // Shapes.
        .init("shape not an array", header: #"{"a":\#(entry(#""1""#, 0, 4))}"#, data: four,
              expected: .invalidShape(name: "a", reason: "it is a string, not an array")),
        .init("negative dimension", header: #"{"a":\#(entry("[-1]", 0, 4))}"#, data: four,
              expected: .invalidShape(name: "a", reason: "negative dimension -1")),
        .init("fractional dimension", header: #"{"a":\#(entry("[1.5]", 0, 4))}"#, data: four,
              expected: .invalidShape(name: "a", reason: "dimension 1.5 is not an integer")),
        .init("exponent dimension", header: #"{"a":\#(entry("[1e0]", 0, 4))}"#, data: four,
              expected: .invalidShape(name: "a", reason: "dimension 1e0 is not an integer")),
        .init("string dimension", header: #"{"a":\#(entry(#"["1"]"#, 0, 4))}"#, data: four,
              expected: .invalidShape(name: "a", reason: "a dimension is a string, not an integer")),
        .init("element count overflow", header: #"{"a":\#(entry("[4294967296,4294967296]", 0, 4))}"#, data: four,
              expected: .shapeOverflow(name: "a")),
        .init("byte count overflow", header: #"{"a":\#(entry("[2305843009213693952]", 0, 4))}"#, data: four,
              expected: .shapeOverflow(name: "a")),
        .init("dimension beyond 64 bits", header: #"{"a":\#(entry("[99999999999999999999]", 0, 4))}"#, data: four,
              expected: .shapeOverflow(name: "a")),
        // Offsets.
        .init("one offset", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#, data: four,
              expected: .invalidDataOffsets(name: "a", reason: "expected an array [begin, end]")),
        .init("three offsets", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, data: four,
              expected: .invalidDataOffsets(name: "a", reason: "expected an array [begin, end]")),
        .init("offsets not an array", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":"0-4"}}"#, data: four,
              expected: .invalidDataOffsets(name: "a", reason: "expected an array [begin, end]")),
        .init("negative offset", header: #"{"a":\#(entry("[0]", -4, -4))}"#,
              expected: .invalidDataOffsets(name: "a", reason: "the offsets must be non-negative integers that fit in 64 bits")),
        .init("begin after end", header: #"{"a":\#(entry("[1]", 4, 0))}"#, data: four,
              expected: .invalidDataOffsets(name: "a", reason: "begin 4 is after end 0")),
        .init("byte length not shape times dtype size", header: #"{"a":\#(entry("[2]", 0, 4))}"#, data: four,
              expected: .byteCountMismatch(name: "a", expected: 8, actual: 4)),
        .init("gap between tensors", header: #"{"a":\#(entry("[1]", 0, 4)),"b":\#(entry("[1]", 8, 12))}"#, data: twelve,
              expected: .offsetsNotContiguous(name: "b", expectedBegin: 4, actualBegin: 8)),
        .init("overlapping tensors", header: #"{"a":\#(entry("[2]", 0, 8)),"b":\#(entry("[2]", 4, 12))}"#, data: twelve,
              expected: .offsetsNotContiguous(name: "b", expectedBegin: 8, actualBegin: 4)),
        .init("data not starting at 0", header: #"{"a":\#(entry("[1]", 4, 8))}"#, data: eight,
              expected: .offsetsNotContiguous(name: "a", expectedBegin: 0, actualBegin: 4)),
        .init("same range twice", header: #"{"a":\#(entry("[1]", 0, 4)),"b":\#(entry("[1]", 0, 4))}"#, data: four,
              expected: .offsetsNotContiguous(name: "b", expectedBegin: 4, actualBegin: 0)),
        .init("data beyond the end of the file", header: #"{"a":\#(entry("[2]", 0, 8))}"#, data: four,
              expected: .dataBeyondFileEnd(name: "a", end: 8, dataByteCount: 4)),
        .init("huge offsets", header: #"{"a":\#(entry("[1]", 9_000_000_000_000_000_000, 9_000_000_000_000_000_004))}"#, data: four,
              expected: .dataBeyondFileEnd(name: "a", end: 9_000_000_000_000_000_004, dataByteCount: 4)),
        .init("trailing bytes after the last tensor", header: #"{"a":\#(entry("[1]", 0, 4))}"#, data: eight,
              expected: .incompleteCoverage(coveredByteCount: 4, dataByteCount: 8)),
        .init("data without tensors", header: "{}", data: four, expected: .incompleteCoverage(coveredByteCount: 0, dataByteCount: 4)),
    ]

    @Test("Each malformed file gives its specific error", arguments: cases)
    func malformed(_ file: CorruptSafeTensors) {
        #expect(throws: file.expected) { try SafeTensorsFile(bytes: file.bytes) }
    }

    @Test("Every error has a readable description", arguments: cases)
    func descriptions(_ file: CorruptSafeTensors) {
        #expect(!file.expected.description.isEmpty)
        #expect(file.expected.description.hasSuffix("."))
    }

    @Test("Every byte-level truncation of a valid file is rejected without crashing")
    func truncations() throws {
        let valid = try SafeTensorsFile(
            tensors: ["w": NamedTensor(shape: [2, 3], values: (0..<6).map(Float.init)), "ids": NamedTensor(shape: [2], values: [Int32(7), 9])],
            metadata: ["config": "{\"hidden\":128}"]
        ).serialized()
        for length in 0..<valid.count {
            #expect(throws: CheckpointError.self) { try SafeTensorsFile(bytes: Array(valid.prefix(length))) }
        }
        #expect(try SafeTensorsFile(bytes: valid).tensors.count == 2)
    }

    @Test("Random single-byte corruptions are rejected or read, never crash")
    func bitFlips() throws {
        let valid = try SafeTensorsFile(
            tensors: ["a": NamedTensor(shape: [3], values: [Float]([1, 2, 3])), "b": NamedTensor(shape: [1, 2], values: [Float]([4, 5]))],
            metadata: ["k": "v"]
        ).serialized()
        var generator = Xoshiro256StarStar(seed: 31)
        for _ in 0..<2_000 {
            var bytes = valid
            let index = generator.nextInt(below: bytes.count)
            bytes[index] ^= UInt8(truncatingIfNeeded: 1 + generator.nextInt(below: 255))
            do throws(CheckpointError) {
                let file = try SafeTensorsFile(bytes: bytes)
                // A flip can land in the data or in a way the header stays valid; then the result must be consistent.
                for tensor in file.tensors.values { #expect(tensor.values.count == tensor.shape.reduce(1, *)) }
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }
}

@Suite("SafeTensors: files that follow the rules are accepted")
struct SafeTensorsAcceptanceTests {
    static func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8) + data
    }

    @Test("An empty header and no data")
    func emptyFile() throws {
        let file = try SafeTensorsFile(bytes: Self.file("{}"))
        #expect(file.tensors.isEmpty && file.metadata.isEmpty)
        #expect(try SafeTensorsFile(bytes: Self.file(#"{"__metadata__":{}}      "#)).metadata.isEmpty)
    }

    @Test("Entries in any header order, whitespace, unpadded header, scalars and empty tensors")
    func flexibleLayout() throws {
        let one = withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian) { Array($0) }
        let seven = withUnsafeBytes(of: Int32(-7).littleEndian) { Array($0) }
        let header = """
            {
              "z": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
              "empty": {"shape": [2, 0, 3], "data_offsets": [4, 4], "dtype": "F32"},
              "__metadata__": {"note": "caf\\u00e9 \\"quoted\\" \\ud83d\\ude00"},
              "a": {"data_offsets": [4, 8], "dtype": "I32", "shape": [1]}
            }
            """
        let file = try SafeTensorsFile(bytes: Self.file(header, data: one + seven))
        #expect(file.tensors["z"] == NamedTensor(shape: [], values: [Float(1.5)]))
        #expect(file.tensors["empty"] == NamedTensor(shape: [2, 0, 3], values: [Float]()))
        #expect(file.tensors["a"] == NamedTensor(shape: [1], values: [Int32(-7)]))
        #expect(file.metadata == ["note": "café \"quoted\" 😀"])
    }
}
