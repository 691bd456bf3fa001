import ArgumentParser
import Foundation

/// A number of bytes given on the command line: `4000000000`, `512M`, `8G`, `1.5T` (powers of 1024; a trailing
/// `B` or `iB` is accepted).
struct ByteCount: ExpressibleByArgument, Sendable, Equatable {
    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        var text = argument.trimmingCharacters(in: .whitespaces).uppercased()
        if text.hasSuffix("IB") { text.removeLast(2) } else if text.hasSuffix("B") { text.removeLast() }
        var scale = 1.0
        if let last = text.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
            scale = Double(1 << (10 * power))
            text.removeLast()
        }
        guard let value = Double(text), value.isFinite, value > 0, value * scale < 9.2e18 else { return nil }
        bytes = Int(value * scale)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
