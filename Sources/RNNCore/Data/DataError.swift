/// An error from building a vocabulary, loading or encoding a corpus, or downloading a data set.
///
/// Each case carries what a person needs to fix the input: the path, the line or byte offset, the offending token.
/// `description` renders it as one sentence; a token is quoted with control characters escaped and at most its first
/// 60 characters (then `…` and its size in bytes), so a hostile input cannot blow up the message.
public enum DataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but could not be read or written; `reason` is the system's explanation.
    case fileSystem(path: String, reason: String)
    /// The file holds no bytes, or (for word-level data) no tokens.
    case emptyFile(path: String)
    /// The file (or the stream read from a pipe or device) holds more than `limit` bytes.
    case fileTooLarge(path: String, limit: Int)
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
            return "Cannot access \(path): \(ErrorText.capped(reason))."
        case .emptyFile(let path):
            return "\(path) is empty."
        case .fileTooLarge(let path, let limit):
            let size = limit >= 1024 ? " (\(ErrorText.byteSize(limit)))" : ""
            return "\(path) is larger than the limit of \(limit) bytes\(size)."
        case .invalidUTF8(let path, let offset):
            return "\(path ?? "The text") is not valid UTF-8 at byte offset \(offset)."
        case .lineTooLong(let path, let line, let length, let limit):
            return "\(path.map { "\($0): line" } ?? "Line") \(line) has \(length) bytes, more than the limit of \(limit)."
        case .vocabularyTooLarge(let limit):
            return "The vocabulary would have more than \(limit) tokens."
        case .unknownToken(let token, let line, let path):
            return "\(path.map { "\($0): line" } ?? "Line") \(line): token \(ErrorText.quoted(token)) is not in the vocabulary."
        case .duplicateToken(let token):
            return "The token \(ErrorText.quoted(token)) appears twice."
        case .invalidToken(let token, let reason):
            return "Invalid token \(ErrorText.quoted(token)): \(ErrorText.capped(reason))."
        case .tokenIDOutOfRange(let id, let count):
            return "Token id \(id) is outside 0..<\(count)."
        case .httpStatus(let url, let statusCode):
            return "GET \(url) returned HTTP status \(statusCode)."
        case .networkFailure(let url, let reason):
            return "GET \(url) failed: \(ErrorText.capped(reason))."
        case .checksumMismatch(let path, let expected, let actual):
            return "\(path) has SHA-256 \(actual), expected \(expected)."
        }
    }
}

/// Bounded renderings of untrusted text for error messages.
enum ErrorText {
    /// The most characters of a token or name an error message quotes.
    static let quotedCharacterLimit = 60

    /// The most characters of a free-form reason an error message shows.
    static let reasonCharacterLimit = 500

    /// `text` in double quotes with control characters, `"` and `\` escaped; when it has more than
    /// ``quotedCharacterLimit`` characters, only those, then `…` and the full size: `"abc…" (16777216 bytes)`.
    static func quoted(_ text: String) -> String {
        let head = text.prefix(quotedCharacterLimit)
        var result = "\""
        for scalar in head.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        if head.endIndex == text.endIndex { return result + "\"" }
        return result + "…\" (\(text.utf8.count) bytes)"
    }

    /// `text` itself, or its first ``reasonCharacterLimit`` characters followed by `… (N bytes)`.
    static func capped(_ text: String, limit: Int = reasonCharacterLimit) -> String {
        let head = text.prefix(limit)
        if head.endIndex == text.endIndex { return text }
        return head + "… (\(text.utf8.count) bytes)"
    }

    /// `"4 GiB"`, `"1.5 MiB"`, `"100 bytes"`: a byte count for people.
    static func byteSize(_ count: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) bytes" }
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[unit])" : "\(rounded) \(units[unit])"
    }
}
