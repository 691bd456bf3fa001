#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes progress to standard error: a live, redrawn bar on a terminal, plain lines otherwise.
struct ProgressDisplay {
    let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastPlainLine = Date.distantPast

    /// Shows a progress state; on a terminal the line is redrawn in place, elsewhere at most every few seconds.
    mutating func show(fraction: Double, label: String, detail: String) {
        if isTerminal {
            let width = 30
            let filled = Int((fraction * Double(width)).rounded(.down)).clamped(to: 0...width)
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            writeError("\r\u{1B}[2K\(label) [\(bar)] \(String(format: "%3.0f%%", fraction * 100)) \(detail)")
        } else if Date().timeIntervalSince(lastPlainLine) >= 5 || fraction >= 1 {
            lastPlainLine = Date()
            writeError("\(label) \(String(format: "%3.0f%%", fraction * 100)) \(detail)\n")
        }
    }

    /// Ends a live line so that normal output starts on a fresh line.
    func finishLine() {
        if isTerminal { writeError("\r\u{1B}[2K") }
    }
}

/// Writes text to standard error, unbuffered.
func writeError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// "1h02m", "3m05s", "12s".
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}

extension String {
    /// The string right-aligned in a field of `width` characters.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
