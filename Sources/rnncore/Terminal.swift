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

    /// The widest bar drawn, in characters.
    static let fullBarWidth = 30
    /// The narrowest bar drawn; below this the bar is left out.
    static let minimumBarWidth = 5

    /// Shows a progress state; on a terminal the line is redrawn in place (fitted to its width, so that it never
    /// wraps), elsewhere at most every few seconds.
    mutating func show(fraction: Double, label: String, detail: String) {
        if isTerminal {
            let line = Self.line(fraction: fraction, label: label, detail: detail, columns: terminalColumns())
            writeError("\r\u{1B}[2K" + line)
        } else if Date().timeIntervalSince(lastPlainLine) >= 5 || fraction >= 1 {
            lastPlainLine = Date()
            writeError("\(label) \(Self.percent(fraction)) \(detail)\n")
        }
    }

    /// Ends a live line so that normal output starts on a fresh line.
    func finishLine() {
        if isTerminal { writeError("\r\u{1B}[2K") }
    }

    /// The live line "LABEL [████······] 42% DETAIL" in at most `columns - 1` characters (a line as wide as the
    /// terminal would wrap on some terminals, and every redraw would then leave a line behind).
    ///
    /// What gives way first: the bar shrinks from ``fullBarWidth`` to ``minimumBarWidth``, then the detail loses
    /// its trailing fields (they are separated by two spaces), then the bar goes, then the detail; the label and
    /// the percentage are cut only when nothing else is left.
    static func line(fraction: Double, label: String, detail: String, columns: Int) -> String {
        let budget = max(columns - 1, 1)
        let core = "\(label) \(percent(fraction))"
        func bar(_ width: Int) -> String {
            let filled = Int((fraction.isFinite ? fraction : 0) * Double(width)).clamped(to: 0...width)
            return " [" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "]"
        }
        // The detail's fields, longest prefix first.
        let fields = detail.components(separatedBy: "  ").filter { !$0.isEmpty }
        let details = (0...fields.count).reversed().map { n in n == 0 ? "" : " " + fields.prefix(n).joined(separator: "  ") }
        let room = budget - core.count
        for tail in details {
            // bar "[" + width + "]" with its leading space: width + 3 characters
            let barWidth = min(fullBarWidth, room - tail.count - 3)
            if barWidth >= minimumBarWidth {
                return label + bar(barWidth) + " " + percent(fraction) + tail
            }
        }
        for tail in details where core.count + tail.count <= budget { return core + tail }
        return String(core.prefix(budget))
    }

    /// "  7%", " 42%", "100%".
    static func percent(_ fraction: Double) -> String {
        String(format: "%3.0f%%", (fraction.isFinite ? fraction : 0) * 100)
    }
}

/// The width of the terminal on standard error: `TIOCGWINSZ`, else `$COLUMNS`, else 80.
func terminalColumns() -> Int {
    var size = winsize()
    if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    if let text = ProcessInfo.processInfo.environment["COLUMNS"], let columns = Int(text), columns > 0 { return columns }
    return 80
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
