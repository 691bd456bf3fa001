/// An error from reading, validating or writing a checkpoint in the safetensors layout.
///
/// Reading validates every field of the file, and each way a file can be malformed has its own case, so a corrupted
/// or hostile file is reported precisely instead of crashing or allocating without bound. Byte offsets count from the
/// start of the file; "data" means the byte buffer after the header. `description` quotes names with control
/// characters escaped and at most 60 characters of each (then `…` and the size), and caps free-form reasons, so a
/// hostile file cannot blow up the message.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// A file-system call failed, or writing was refused by the write rule of ``OutputFile`` (a device, a FIFO or a
    /// directory at the path, a missing or unwritable directory); `reason` explains it.
    case fileSystem(path: String, reason: String)
    /// The file has fewer than the 8 bytes of the header-length prefix.
    case fileTooShort(byteCount: Int)
    /// The header length prefix exceeds the limit (``SafeTensorsFile/maximumHeaderByteCount``).
    case headerTooLarge(byteCount: UInt64, limit: Int)
    /// The header length prefix points beyond the end of the file.
    case headerBeyondFileEnd(headerByteCount: UInt64, fileByteCount: Int)
    /// The header is not valid UTF-8 at `byteOffset`.
    case headerNotUTF8(byteOffset: Int)
    /// The header is not valid JSON at `byteOffset`.
    case headerNotJSON(byteOffset: Int, reason: String)
    /// The header is JSON but not an object.
    case headerNotObject
    /// Two header entries have the same name.
    case duplicateName(String)
    /// The entry `name` is not an object with exactly `dtype`, `shape` and `data_offsets`.
    case invalidEntry(name: String, reason: String)
    /// The entry `name` has a dtype other than `F32` and `I32`.
    case unsupportedDType(name: String, dtype: String)
    /// The shape of `name` is not a list of non-negative integers.
    case invalidShape(name: String, reason: String)
    /// The element count or byte count of `name` overflows.
    case shapeOverflow(name: String)
    /// `data_offsets` of `name` is not `[begin, end]` with integers `0 <= begin <= end`.
    case invalidDataOffsets(name: String, reason: String)
    /// The byte range of `name` does not hold exactly `shape`'s element count times the dtype's size.
    case byteCountMismatch(name: String, expected: Int, actual: Int)
    /// The byte range of `name` ends at `end`, beyond the `dataByteCount` bytes of data.
    case dataBeyondFileEnd(name: String, end: Int, dataByteCount: Int)
    /// The byte ranges, sorted by offset, leave a gap or overlap: `name` begins at `actualBegin`, not `expectedBegin`.
    case offsetsNotContiguous(name: String, expectedBegin: Int, actualBegin: Int)
    /// The tensors cover only `coveredByteCount` of the `dataByteCount` bytes of data.
    case incompleteCoverage(coveredByteCount: Int, dataByteCount: Int)
    /// `__metadata__` is not an object of string values.
    case invalidMetadata(reason: String)
    /// A tensor cannot be named `name` (`__metadata__` is reserved).
    case reservedName(String)
    /// When writing: `name`'s shape holds a different number of elements than its values.
    case elementCountMismatch(name: String, shape: [Int], valueCount: Int)
    /// A tensor the caller needs is not in the file.
    case missingTensor(name: String)
    /// A tensor has another dtype than the caller needs.
    case dtypeMismatch(name: String, expected: String, actual: String)
    /// A tensor has another shape than the caller needs.
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// A training checkpoint was resumed on another `text` ("training" or "validation") than its run was trained on;
    /// `expected` and `actual` describe both (token count and SHA-256).
    case trainingDataMismatch(text: String, expected: String, actual: String)

    /// A one-sentence explanation of the error.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "No checkpoint at \(path)."
        case .fileSystem(let path, let reason):
            return "Cannot access \(path): \(ErrorText.capped(reason))."
        case .fileTooShort(let count):
            return "The file has \(count) bytes, fewer than the 8-byte header length."
        case .headerTooLarge(let count, let limit):
            return "The header length \(count) exceeds the limit of \(limit) bytes: this is not a safetensors checkpoint, or it is damaged."
        case .headerBeyondFileEnd(let header, let file):
            return "The header length \(header) goes beyond the end of the \(file)-byte file: this is not a safetensors checkpoint, or it is truncated."
        case .headerNotUTF8(let offset):
            return "The header is not valid UTF-8 at byte offset \(offset)."
        case .headerNotJSON(let offset, let reason):
            return "The header is not valid JSON at byte offset \(offset): \(ErrorText.capped(reason))."
        case .headerNotObject:
            return "The header is not a JSON object."
        case .duplicateName(let name):
            return "The header names \(ErrorText.quoted(name)) twice."
        case .invalidEntry(let name, let reason):
            return "Tensor \(ErrorText.quoted(name)): \(ErrorText.capped(reason))."
        case .unsupportedDType(let name, let dtype):
            return "Tensor \(ErrorText.quoted(name)) has unsupported dtype \(ErrorText.quoted(dtype)) (supported: F32, I32)."
        case .invalidShape(let name, let reason):
            return "Tensor \(ErrorText.quoted(name)) has an invalid shape: \(ErrorText.capped(reason))."
        case .shapeOverflow(let name):
            return "The size of tensor \(ErrorText.quoted(name)) overflows."
        case .invalidDataOffsets(let name, let reason):
            return "Tensor \(ErrorText.quoted(name)) has invalid data_offsets: \(ErrorText.capped(reason))."
        case .byteCountMismatch(let name, let expected, let actual):
            return "Tensor \(ErrorText.quoted(name)) needs \(expected) bytes but its data_offsets span \(actual)."
        case .dataBeyondFileEnd(let name, let end, let count):
            return "Tensor \(ErrorText.quoted(name)) ends at data offset \(end), beyond the \(count) bytes of data."
        case .offsetsNotContiguous(let name, let expected, let actual):
            let kind = actual > expected ? "a gap" : "an overlap"
            return "Tensor \(ErrorText.quoted(name)) begins at data offset \(actual), not \(expected): \(kind) in the data."
        case .incompleteCoverage(let covered, let count):
            return "The tensors cover \(covered) of the \(count) bytes of data."
        case .invalidMetadata(let reason):
            return "Invalid __metadata__: \(ErrorText.capped(reason))."
        case .reservedName(let name):
            return "\(ErrorText.quoted(name)) is reserved and cannot name a tensor."
        case .elementCountMismatch(let name, let shape, let count):
            return "Tensor \(ErrorText.quoted(name)) has shape \(ErrorText.capped("\(shape)", limit: 200)) but \(count) values."
        case .missingTensor(let name):
            return "The checkpoint has no tensor \(ErrorText.quoted(name))."
        case .dtypeMismatch(let name, let expected, let actual):
            return "Tensor \(ErrorText.quoted(name)) has dtype \(ErrorText.quoted(actual)), expected \(expected)."
        case .shapeMismatch(let name, let expected, let actual):
            return "Tensor \(ErrorText.quoted(name)) has shape \(ErrorText.capped("\(actual)", limit: 200)), expected \(ErrorText.capped("\(expected)", limit: 200))."
        case .trainingDataMismatch(let text, let expected, let actual):
            return "The \(text) text is not the one this run was trained on: it has \(ErrorText.capped(actual)), the checkpoint expects \(ErrorText.capped(expected))."
        }
    }
}

extension CheckpointError {
    /// A readable one-line account of an error met while decoding a JSON document of the metadata: a
    /// `DecodingError` as "what, at which key" instead of a dump of the enum, anything else as its description.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return ErrorText.capped("\(error)") }
        func sentence(_ text: String) -> String {
            var text = Substring(text)
            while text.hasSuffix(".") { text = text.dropLast() }
            return String(text)
        }
        func location(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
            return keys.isEmpty ? "" : " (at \(keys.joined(separator: ".")))"
        }
        let text: String
        switch error {
        case .dataCorrupted(let context):
            text = sentence(context.debugDescription) + location(context)
        case .keyNotFound(let key, let context):
            text = "the key \(ErrorText.quoted(key.stringValue)) is missing" + location(context)
        case .typeMismatch(let type, let context):
            text = "a value is not of type \(type)" + location(context)
        case .valueNotFound(let type, let context):
            text = "a value of type \(type) is missing" + location(context)
        @unknown default:
            text = "\(error)"
        }
        return ErrorText.capped(text)
    }
}
