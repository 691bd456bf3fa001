// The one JSON writer of the tool's `--json` outputs: valid JSON whatever the numbers are.

import Foundation

/// JSON for `--json` outputs.
///
/// JSON has no NaN or infinity, so a non-finite number is written as `null`, and the object that holds it gains a
/// `"non_finite"` object naming each such key with what the value was (`"nan"`, `"+inf"` or `"-inf"`), e.g.
/// `{"train_perplexity": null, "non_finite": {"train_perplexity": "+inf"}, …}`. Keys are sorted; the text is one line.
enum JSONOutput {
    /// The one-line JSON text of `object`, non-finite numbers replaced as described above.
    static func line(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: sanitized(object), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `value` (a Codable record such as the settings) as a JSON object for ``line(_:)``.
    static func object<T: Encodable>(_ value: T) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: [.fragmentsAllowed])
    }

    /// `object` with every non-finite number, at any depth, replaced by `NSNull` and reported in `"non_finite"`.
    static func sanitized(_ object: [String: Any]) -> [String: Any] {
        var result: [String: Any] = [:]
        var nonFinite: [String: String] = [:]
        for (key, value) in object {
            if let name = nonFiniteName(value) {
                nonFinite[key] = name
                result[key] = NSNull()
            } else {
                result[key] = sanitizedValue(value)
            }
        }
        if !nonFinite.isEmpty { result["non_finite"] = nonFinite }
        return result
    }

    private static func sanitizedValue(_ value: Any) -> Any {
        switch value {
        case let dictionary as [String: Any]: return sanitized(dictionary)
        // An array has no place for an explanation: a non-finite element becomes null.
        case let array as [Any]: return array.map { nonFiniteName($0) == nil ? sanitizedValue($0) : NSNull() }
        default: return value
        }
    }

    /// `"nan"`, `"+inf"` or `"-inf"` for a non-finite floating-point number; `nil` for anything else.
    private static func nonFiniteName(_ value: Any) -> String? {
        let double: Double
        switch value {
        case let v as Double: double = v
        case let v as Float: double = Double(v)
        default: return nil
        }
        if double.isFinite { return nil }
        return double.isNaN ? "nan" : (double > 0 ? "+inf" : "-inf")
    }
}
