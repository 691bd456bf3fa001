import Foundation

/// A tensor stored under a name in a ``SafeTensorsFile``: a shape and its elements in row-major order.
public struct NamedTensor: Sendable, Equatable {
    /// The element types RNNCore reads and writes, with their safetensors spelling.
    public enum DType: String, Sendable, Codable, CaseIterable {
        /// 32-bit IEEE float, `"F32"`.
        case float32 = "F32"
        /// 32-bit signed integer, `"I32"`.
        case int32 = "I32"

        /// The size of one element in bytes.
        public var byteCount: Int { 4 }
    }

    /// The elements, typed by dtype.
    public enum Values: Sendable, Equatable {
        /// `F32` elements.
        case float32([Float])
        /// `I32` elements.
        case int32([Int32])

        /// The number of elements.
        public var count: Int {
            switch self {
            case .float32(let values): return values.count
            case .int32(let values): return values.count
            }
        }
    }

    /// The dimensions, outermost first; `[]` is a scalar (one element).
    public let shape: [Int]

    /// The elements in row-major order.
    public let values: Values

    /// Creates an `F32` tensor.
    /// - Parameters:
    ///   - shape: Non-negative dimensions whose product is `values.count` (a mismatch is a programming error and traps).
    ///   - values: The elements in row-major order.
    public init(shape: [Int], values: [Float]) {
        precondition(NamedTensor.elementCount(of: shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = .float32(values)
    }

    /// Creates an `I32` tensor.
    /// - Parameters:
    ///   - shape: Non-negative dimensions whose product is `values.count` (a mismatch is a programming error and traps).
    ///   - values: The elements in row-major order.
    public init(shape: [Int], values: [Int32]) {
        precondition(NamedTensor.elementCount(of: shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = .int32(values)
    }

    /// The element type.
    public var dtype: DType {
        switch values {
        case .float32: return .float32
        case .int32: return .int32
        }
    }

    /// The elements when the dtype is `F32`, otherwise `nil`.
    public var floats: [Float]? {
        if case .float32(let values) = values { return values }
        return nil
    }

    /// The elements when the dtype is `I32`, otherwise `nil`.
    public var int32s: [Int32]? {
        if case .int32(let values) = values { return values }
        return nil
    }

    /// The product of `shape`, or `nil` when a dimension is negative or the product overflows `Int`.
    static func elementCount(of shape: [Int]) -> Int? {
        var product = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (result, overflow) = product.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            product = result
        }
        return product
    }
}

/// The contents of a file in the safetensors layout: named tensors plus string metadata.
///
/// The layout (readable by Python's `safetensors`, NumPy and PyTorch tools): an 8-byte little-endian `UInt64` header
/// length `N`; `N` bytes of UTF-8 JSON, `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
/// "__metadata__": {"key": "value", …}}`, padded with spaces to a multiple of 8; then the raw little-endian data, the
/// offsets counted from the start of the data.
///
/// ``write(to:)`` orders tensors by name with contiguous offsets and replaces the file atomically.
/// ``read(from:)`` validates every field — lengths, UTF-8, JSON, duplicate names, dtypes, shapes, offsets, coverage —
/// and throws a specific ``CheckpointError`` instead of trusting the file; it never allocates more than the file size.
public struct SafeTensorsFile: Sendable, Equatable {
    /// The largest header accepted by ``read(from:)``: 100 000 000 bytes, the limit of the reference implementation.
    public static let maximumHeaderByteCount = 100_000_000

    /// The header key reserved for metadata.
    public static let metadataKey = "__metadata__"

    /// The tensors, by name.
    public var tensors: [String: NamedTensor]

    /// Free-form string metadata (model configuration, vocabulary, …), stored under `"__metadata__"`.
    public var metadata: [String: String]

    /// Creates file contents.
    public init(tensors: [String: NamedTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Returns the `F32` elements of the tensor `name`, checking its dtype and, when given, its shape.
    /// - Throws: ``CheckpointError/missingTensor(name:)``, ``CheckpointError/dtypeMismatch(name:expected:actual:)``
    ///   or ``CheckpointError/shapeMismatch(name:expected:actual:)``.
    public func floats(named name: String, shape: [Int]? = nil) throws(CheckpointError) -> [Float] {
        guard let tensor = tensors[name] else { throw .missingTensor(name: name) }
        if let shape, shape != tensor.shape { throw .shapeMismatch(name: name, expected: shape, actual: tensor.shape) }
        guard let values = tensor.floats else {
            throw .dtypeMismatch(name: name, expected: NamedTensor.DType.float32.rawValue, actual: tensor.dtype.rawValue)
        }
        return values
    }

    // MARK: Reading

    /// Reads and validates a safetensors file.
    /// - Throws: ``CheckpointError/fileNotFound(path:)``, ``CheckpointError/fileSystem(path:reason:)``, or the
    ///   validation errors of ``init(bytes:)``.
    public static func read(from url: URL) throws(CheckpointError) -> SafeTensorsFile {
        let path = url.path
        let bytes: [UInt8]
        do {
            bytes = try RNNFileIO.readAll(atPath: path)
        } catch {
            throw error.isNotFound ? .fileNotFound(path: path) : .fileSystem(path: path, reason: error.reason)
        }
        return try SafeTensorsFile(bytes: bytes)
    }

    /// Parses and validates the bytes of a safetensors file.
    /// - Throws: A ``CheckpointError`` naming the first problem found.
    public init(bytes: [UInt8]) throws(CheckpointError) {
        self = try bytes.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
            try SafeTensorsFile.parse(buffer)
        }
    }

    private struct Entry {
        let name: String
        let dtype: NamedTensor.DType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    private static func parse(_ file: UnsafeBufferPointer<UInt8>) throws(CheckpointError) -> SafeTensorsFile {
        guard file.count >= 8 else { throw .fileTooShort(byteCount: file.count) }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(file[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(maximumHeaderByteCount) else {
            throw .headerTooLarge(byteCount: headerLength, limit: maximumHeaderByteCount)
        }
        guard headerLength <= UInt64(file.count - 8) else {
            throw .headerBeyondFileEnd(headerByteCount: headerLength, fileByteCount: file.count)
        }
        let dataStart = 8 + Int(headerLength)
        let header = UnsafeBufferPointer(rebasing: file[8..<dataStart])
        if let offset = UTF8Scan.firstInvalidOffset(in: header) { throw .headerNotUTF8(byteOffset: 8 + offset) }
        let json: SafeTensorsJSON
        do {
            json = try SafeTensorsJSONParser.parse(header)
        } catch {
            throw .headerNotJSON(byteOffset: 8 + error.offset, reason: error.reason)
        }
        guard case .object(let members) = json else { throw .headerNotObject }

        var seen = Set<String>()
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for member in members {
            let (name, value) = (member.key, member.value)
            guard seen.insert(name).inserted else { throw .duplicateName(name) }
            if name == metadataKey {
                metadata = try parseMetadata(value)
            } else {
                entries.append(try parseEntry(name: name, value: value))
            }
        }

        // Like the reference loader: sorted by offsets, the ranges must tile the data exactly.
        let data = UnsafeBufferPointer(rebasing: file[dataStart...])
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        for entry in entries {
            guard entry.end <= data.count else {
                throw .dataBeyondFileEnd(name: entry.name, end: entry.end, dataByteCount: data.count)
            }
            guard entry.begin == covered else {
                throw .offsetsNotContiguous(name: entry.name, expectedBegin: covered, actualBegin: entry.begin)
            }
            covered = entry.end
        }
        guard covered == data.count else { throw .incompleteCoverage(coveredByteCount: covered, dataByteCount: data.count) }

        var tensors: [String: NamedTensor] = [:]
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let raw = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(data)[entry.begin..<entry.end])
            switch entry.dtype {
            case .float32:
                let values = (0..<raw.count / 4).map { Float(bitPattern: loadLittleEndianUInt32(raw, at: 4 * $0)) }
                tensors[entry.name] = NamedTensor(shape: entry.shape, values: values)
            case .int32:
                let values = (0..<raw.count / 4).map { Int32(bitPattern: loadLittleEndianUInt32(raw, at: 4 * $0)) }
                tensors[entry.name] = NamedTensor(shape: entry.shape, values: values)
            }
        }
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    @inline(__always)
    private static func loadLittleEndianUInt32(_ raw: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    private static func parseMetadata(_ value: SafeTensorsJSON) throws(CheckpointError) -> [String: String] {
        guard case .object(let members) = value else { throw .invalidMetadata(reason: "it is \(value.kind), not an object") }
        var metadata: [String: String] = [:]
        for member in members {
            let (key, item) = (member.key, member.value)
            guard case .string(let text) = item else {
                throw .invalidMetadata(reason: "the value of \"\(key)\" is \(item.kind), not a string")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw .invalidMetadata(reason: "the key \"\(key)\" appears twice")
            }
        }
        return metadata
    }

    private static func parseEntry(name: String, value: SafeTensorsJSON) throws(CheckpointError) -> Entry {
        guard case .object(let fields) = value else {
            throw .invalidEntry(name: name, reason: "the entry is \(value.kind), not an object")
        }
        var dtypeValue: SafeTensorsJSON?
        var shapeValue: SafeTensorsJSON?
        var offsetsValue: SafeTensorsJSON?
        for member in fields {
            let (key, field) = (member.key, member.value)
            switch key {
            case "dtype" where dtypeValue == nil: dtypeValue = field
            case "shape" where shapeValue == nil: shapeValue = field
            case "data_offsets" where offsetsValue == nil: offsetsValue = field
            case "dtype", "shape", "data_offsets": throw .invalidEntry(name: name, reason: "the field \"\(key)\" appears twice")
            default: throw .invalidEntry(name: name, reason: "unknown field \"\(key)\"")
            }
        }
        guard let dtypeValue else { throw .invalidEntry(name: name, reason: "missing field \"dtype\"") }
        guard let shapeValue else { throw .invalidEntry(name: name, reason: "missing field \"shape\"") }
        guard let offsetsValue else { throw .invalidEntry(name: name, reason: "missing field \"data_offsets\"") }

        guard case .string(let dtypeName) = dtypeValue else {
            throw .invalidEntry(name: name, reason: "\"dtype\" is \(dtypeValue.kind), not a string")
        }
        guard let dtype = NamedTensor.DType(rawValue: dtypeName) else { throw .unsupportedDType(name: name, dtype: dtypeName) }

        guard case .array(let dimensions) = shapeValue else {
            throw .invalidShape(name: name, reason: "it is \(shapeValue.kind), not an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensions.count)
        for dimension in dimensions {
            guard case .number(let literal) = dimension else {
                throw .invalidShape(name: name, reason: "a dimension is \(dimension.kind), not an integer")
            }
            if literal.hasPrefix("-") && literal.contains(where: { ("1"..."9").contains($0) }) {
                throw .invalidShape(name: name, reason: "negative dimension \(literal)")
            }
            guard let size = dimension.nonNegativeInteger else {
                if literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                    throw .invalidShape(name: name, reason: "dimension \(literal) is not an integer")
                }
                throw .shapeOverflow(name: name)
            }
            shape.append(size)
        }
        guard let elementCount = NamedTensor.elementCount(of: shape) else { throw .shapeOverflow(name: name) }
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteCount)
        guard !overflow else { throw .shapeOverflow(name: name) }

        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw .invalidDataOffsets(name: name, reason: "expected an array [begin, end]")
        }
        guard let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger else {
            throw .invalidDataOffsets(name: name, reason: "the offsets must be non-negative integers that fit in 64 bits")
        }
        guard begin <= end else { throw .invalidDataOffsets(name: name, reason: "begin \(begin) is after end \(end)") }
        guard end - begin == byteCount else { throw .byteCountMismatch(name: name, expected: byteCount, actual: end - begin) }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    // MARK: Writing

    /// Writes the file atomically: to a temporary file in the same directory, flushed with `fsync`, then renamed
    /// over `url`. On any error the temporary file is removed and an existing file at `url` is left untouched.
    ///
    /// The write rule of ``OutputFile`` applies: a symbolic link is written through (the file it points to is
    /// replaced), and a device, FIFO, socket or directory at `url`, or a missing or unwritable directory, is refused
    /// before anything is created.
    /// - Throws: ``CheckpointError/reservedName(_:)``, ``CheckpointError/elementCountMismatch(name:shape:valueCount:)``
    ///   or ``CheckpointError/fileSystem(path:reason:)`` (its path is `url`'s, its reason the refusal's or the failed
    ///   call's).
    public func write(to url: URL) throws(CheckpointError) {
        let (header, order) = try makeHeader()
        do {
            try RNNFileIO.writeAtomically(toPath: url.path) { (file) throws(FileIOFailure) in
                try file.write(header)
                for name in order { try file.write(Self.littleEndianBytes(of: tensors[name]!.values)) }
            }
        } catch {
            throw .fileSystem(path: error.path, reason: error.reason)
        }
    }

    /// Returns the bytes of the file that ``write(to:)`` would write.
    /// - Throws: ``CheckpointError/reservedName(_:)`` or ``CheckpointError/elementCountMismatch(name:shape:valueCount:)``.
    public func serialized() throws(CheckpointError) -> [UInt8] {
        var (bytes, order) = try makeHeader()
        for name in order { bytes += Self.littleEndianBytes(of: tensors[name]!.values) }
        return bytes
    }

    /// The 8-byte length prefix plus the padded JSON header, and the tensor names in data order.
    private func makeHeader() throws(CheckpointError) -> (bytes: [UInt8], order: [String]) {
        let order = tensors.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            SafeTensorsJSONWriter.appendString(Self.metadataKey, to: &json)
            json += Array(":{".utf8)
            for (index, key) in metadata.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { json.append(UInt8(ascii: ",")) }
                SafeTensorsJSONWriter.appendString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                SafeTensorsJSONWriter.appendString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for name in order {
            guard name != Self.metadataKey else { throw .reservedName(name) }
            let tensor = tensors[name]!
            guard let count = NamedTensor.elementCount(of: tensor.shape), count == tensor.values.count else {
                throw .elementCountMismatch(name: name, shape: tensor.shape, valueCount: tensor.values.count)
            }
            let end = offset + count * tensor.dtype.byteCount
            separator()
            SafeTensorsJSONWriter.appendString(name, to: &json)
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            json += Array(":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8)
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count)
        let length = UInt64(json.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        bytes += json
        return (bytes, order)
    }

    private static func littleEndianBytes(of values: NamedTensor.Values) -> [UInt8] {
        switch values {
        case .float32(let floats):
            #if _endian(little)
            return floats.withUnsafeBytes { Array($0) }
            #else
            return floats.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Array($0) }
            #endif
        case .int32(let ints):
            #if _endian(little)
            return ints.withUnsafeBytes { Array($0) }
            #else
            return ints.map { $0.littleEndian }.withUnsafeBytes { Array($0) }
            #endif
        }
    }
}
