import Glibc
import TetherClient
import TetherIO
import TetherProtocol

/// How a verb shows the streams beyond stdout and stderr (`tether-warning` and the others
/// in the session), as PowerShell's host does:
///
/// - warnings: `WARNING: text` on stderr, always;
/// - verbose: `VERBOSE: text` on stderr, only with `--verbose`;
/// - information: the text as a plain line on stderr (PowerShell 5+ shows the information
///   stream of Write-Host; it is for the person, not the pipeline);
/// - progress: a bar per activity (per computer when fanned out) below the output on
///   stderr — only when stderr is a terminal, and gone when the activity completes or
///   its command ends; without a terminal nothing is drawn;
/// - the fan-out's own progress (computers done / total, failures so far) the same way.
///
/// Colour (yellow warnings, cyan verbose, bars) only on a terminal and without `NO_COLOR`.
final class StreamDisplay: Sendable {
    let showVerbose: Bool
    /// stderr is a terminal we may draw on (not raw for a `--tty` command, not `--json`).
    let drawsProgress: Bool
    let color: Bool
    /// Lines end with \r\n: the terminal is raw (`--tty`).
    let rawTerminal: Bool

    private let lock = Lock()
    // guarded by lock
    nonisolated(unsafe) private var bars: [(label: String?, progress: ProgressRecord)] = []
    nonisolated(unsafe) private var fanOut: (done: Int, failed: Int, total: Int)?

    init(showVerbose: Bool, json: Bool = false, rawTerminal: Bool = false) {
        let terminal = isatty(2) != 0
        self.showVerbose = showVerbose
        self.rawTerminal = rawTerminal
        drawsProgress = terminal && !json && !rawTerminal
        color = terminal && (getenv("NO_COLOR").map { String(cString: $0).isEmpty } ?? true)
    }

    // MARK: Records

    /// Shows one stream record of `label`'s command (nil: the only one), through its
    /// output so fanned-out lines get their [computer] prefix.
    func show(_ record: StreamRecord, label: String?, output: TargetOutput,
              from sequence: OutputSequence) throws(OutputWriteError) {
        let line: String
        switch record {
        case .warning(let text):
            line = paint("WARNING: " + text, code: "33")
        case .verbose(let text):
            guard showVerbose else { return }
            line = paint("VERBOSE: " + text, code: "36")
        case .information(let text):
            line = text
        case .progress(let progress):
            update(progress, label: label)
            return
        }
        var bytes = Array(line.utf8)
        if bytes.last != 0x0A { bytes.append(0x0A) }
        if rawTerminal { bytes = TerminalText.rawLineEndings(bytes) }
        try output.finish()
        try output.stderr(bytes, from: sequence)
    }

    /// `label`'s command ended: its bars go.
    func commandEnded(label: String?) {
        guard drawsProgress else { return }
        let changed: Bool = lock.withLock {
            let before = bars.count
            bars.removeAll { $0.label == label }
            return bars.count != before
        }
        if changed { redraw() }
    }

    private func update(_ progress: ProgressRecord, label: String?) {
        guard drawsProgress else { return }
        lock.withLock {
            let index = bars.firstIndex { $0.label == label && $0.progress.activity == progress.activity }
            if progress.completed {
                if let index { bars.remove(at: index) }
            } else if let index {
                bars[index].progress = progress
            } else {
                bars.append((label, progress))
            }
        }
        redraw()
    }

    // MARK: Fan-out

    /// A fan-out to `total` computers begins (drawn only for more than one).
    func beginFanOut(total: Int) {
        guard drawsProgress, total > 1 else { return }
        lock.withLock { fanOut = (0, 0, total) }
        redraw()
    }

    /// One computer is done (`failed`: with an error or a non-zero status).
    func targetFinished(failed: Bool) {
        guard drawsProgress else { return }
        let drawn: Bool = lock.withLock {
            guard var state = fanOut else { return false }
            state.done += 1
            if failed { state.failed += 1 }
            fanOut = state
            return true
        }
        if drawn { redraw() }
    }

    /// Everything drawn goes (the verb is done).
    func finish() {
        guard drawsProgress else { return }
        lock.withLock {
            bars.removeAll()
            fanOut = nil
        }
        Terminal.shared.setFooter([])
    }

    // MARK: Drawing

    private func redraw() {
        let lines: [String] = lock.withLock {
            var lines = bars.map { bar in barLine(bar.progress, label: bar.label) }
            if let fanOut {
                var line = "tether: \(fanOut.done)/\(fanOut.total) computers done"
                if fanOut.failed > 0 { line += ", " + paint("\(fanOut.failed) failed", code: "31") }
                lines.append(line)
            }
            return lines
        }
        Terminal.shared.setFooter(lines)
    }

    static let barWidth = 30

    /// `[web1] Activity [=========>          ]  33% Status`
    private func barLine(_ progress: ProgressRecord, label: String?) -> String {
        var line = label.map { "[\($0)] " } ?? ""
        line += paint(progress.activity, code: "1") + " ["
        let width = StreamDisplay.barWidth
        if let percent = progress.percent {
            let filled = width * percent / 100
            var bar = String(repeating: "=", count: filled)
            if filled < width { bar += ">" + String(repeating: " ", count: width - filled - 1) }
            line += paint(bar, code: "36") + "] "
            let number = String(percent)
            line += String(repeating: " ", count: 3 - number.count) + number + "%"
        } else {
            line += String(repeating: " ", count: width) + "]    …"
        }
        if !progress.status.isEmpty { line += " " + progress.status }
        return line
    }

    private func paint(_ text: String, code: String) -> String {
        color ? "\u{1B}[" + code + "m" + text + "\u{1B}[0m" : text
    }
}

/// Text for a terminal line.
enum TerminalText {
    /// `text` cut to `columns` visible characters (escape sequences take none); control
    /// characters become spaces, so a line stays one line.
    static func fit(_ text: String, columns: Int) -> String {
        var out = ""
        var visible = 0
        var inEscape = false
        var cut = false
        for scalar in text.unicodeScalars {
            if inEscape {
                out.unicodeScalars.append(scalar)
                if (0x40...0x7E).contains(scalar.value) && scalar != "[" { inEscape = false }
                continue
            }
            if scalar == "\u{1B}" {
                inEscape = true
                out.unicodeScalars.append(scalar)
                continue
            }
            guard visible < columns else { cut = true; continue }
            out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
            visible += 1
        }
        if cut && text.contains("\u{1B}") { out += "\u{1B}[0m" }
        return out
    }

    /// \n → \r\n, for a terminal in raw mode.
    static func rawLineEndings(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        for byte in bytes {
            if byte == 0x0A { out.append(0x0D) }
            out.append(byte)
        }
        return out
    }
}
