/// An error from building a vocabulary, loading or encoding a corpus, or downloading a data set.
///
/// Each case carries what a person needs to fix the input: the path, the line or byte offset, the offending token.
/// `description` renders it as one sentence.
public enum DataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but could not be read or written; `reason` is the system's explanation.
    case fileSystem(path: String, reason: String)
    /// The file holds no bytes, or (for word-level data) no tokens.
    case emptyFile(path: String)
    /// The bytes at `byteOffset` (counted from the start of the file, or of the text) are not valid UTF-8.
    case invalidUTF8(path: String?, byteOffset: Int)
    /// Line `line` (1-based) holds `length` bytes, more than the limit of `limit` bytes.
    case lineTooLong(path: String?, line: Int, length: Int, limit: Int)
    /// The vocabulary would need more than `limit` distinct tokens.
    case vocabularyTooLarge(limit: Int)
    /// `token`, first seen on line `line` (1-based), is not in the vocabulary and the policy does not map it.
    case unknownToken(String, line: Int, path: String?)
    /// A token list holds `token` twice.
    case duplicateToken(String)
    /// `token` cannot be a token of this vocabulary level (empty, holds whitespace, or not one `Character`).
    case invalidToken(String, reason: String)
    /// Token id `id` is outside `0..<vocabularyCount`.
    case tokenIDOutOfRange(id: Int32, vocabularyCount: Int)
    /// A download returned an HTTP status other than 200.
    case httpStatus(url: String, statusCode: Int)
    /// A download failed before a response arrived (no connection, DNS failure, time-out, …).
    case networkFailure(url: String, reason: String)
    /// The SHA-256 digest (lowercase hex) of a download (`path` is its URL) or a file differs from the expected one.
    case checksumMismatch(path: String, expected: String, actual: String)

    /// A one-sentence explanation of the error.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "No file at \(path)."
        case .fileSystem(let path, let reason):
            return "Cannot access \(path): \(reason)."
        case .emptyFile(let path):
            return "\(path) is empty."
        case .invalidUTF8(let path, let offset):
            return "\(path ?? "The text") is not valid UTF-8 at byte offset \(offset)."
        case .lineTooLong(let path, let line, let length, let limit):
            return "\(path.map { "\($0): line" } ?? "Line") \(line) has \(length) bytes, more than the limit of \(limit)."
        case .vocabularyTooLarge(let limit):
            return "The vocabulary would have more than \(limit) tokens."
        case .unknownToken(let token, let line, let path):
            return "\(path.map { "\($0): line" } ?? "Line") \(line): token \"\(token)\" is not in the vocabulary."
        case .duplicateToken(let token):
            return "The token \"\(token)\" appears twice."
        case .invalidToken(let token, let reason):
            return "Invalid token \"\(token)\": \(reason)."
        case .tokenIDOutOfRange(let id, let count):
            return "Token id \(id) is outside 0..<\(count)."
        case .httpStatus(let url, let statusCode):
            return "GET \(url) returned HTTP status \(statusCode)."
        case .networkFailure(let url, let reason):
            return "GET \(url) failed: \(reason)."
        case .checksumMismatch(let path, let expected, let actual):
            return "\(path) has SHA-256 \(actual), expected \(expected)."
        }
    }
}
