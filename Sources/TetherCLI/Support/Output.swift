import Glibc
import TetherClient
import TetherIO

/// Remote output that could not be written to this process's stdout or stderr: the
/// reader went away (EPIPE: `| head`) or the destination failed (ENOSPC, EIO…). What
/// was not written is not acknowledged, so it stays on the host for the next `receive`.
struct OutputWriteError: Error, Sendable {
    let fd: Int32
    let code: Int32

    var readerClosed: Bool { code == EPIPE }

    var message: String {
        "cannot write to standard \(fd == 2 ? "error" : "output"): \(String(cString: strerror(code)))"
    }
}

/// Whole writes to stdout/stderr from many concurrent tasks, one lock, no interleaving
/// inside a write. A write that fails fails for good on that descriptor (every later
/// write throws the same error without trying): the process is on its way out.
///
/// It also keeps the *footer* — progress bars drawn below the output on stderr when that
/// is a terminal (`StreamDisplay`): every write to the screen (stderr, and stdout when it
/// is a terminal too) first erases the footer and draws it again after, once the output
/// ends a line, so bars never mix into the output and never stay behind in it.
final class Terminal: Sendable {
    static let shared = Terminal()
    private let lock = Lock()
    nonisolated(unsafe) private var failures: [Int32: Int32] = [:]  // fd → errno, guarded by lock
    nonisolated(unsafe) private var footer: [String] = []           // guarded by lock
    /// Footer lines on the screen now (the cursor is at the end of the last one).
    nonisolated(unsafe) private var footerDrawn = 0                 // guarded by lock
    /// The screen's last output byte was a newline: a footer may be drawn below it.
    nonisolated(unsafe) private var screenAtLineStart = true        // guarded by lock
    private let stdoutIsScreen = isatty(1) != 0

    /// Writes all of `bytes` (write(2) returned for every byte), or throws.
    func write(_ bytes: [UInt8], to fd: Int32) throws(OutputWriteError) {
        guard !bytes.isEmpty else { return }
        let failure: Int32? = lock.withLock {
            if let earlier = failures[fd] { return earlier }
            let toScreen = fd == 2 || (fd == 1 && stdoutIsScreen)
            if toScreen { eraseFooterLocked() }
            if let error = writeAllLocked(bytes, to: fd) {
                failures[fd] = error
                return error
            }
            if toScreen {
                screenAtLineStart = bytes.last == 0x0A
                drawFooterLocked()
            }
            return nil
        }
        if let failure { throw OutputWriteError(fd: fd, code: failure) }
    }

    /// Replaces the footer (stderr must be a terminal; empty: none).
    func setFooter(_ lines: [String]) {
        lock.withLock {
            guard lines != footer || footerDrawn == 0 else { return }
            eraseFooterLocked()
            footer = lines
            drawFooterLocked()
        }
    }

    private func writeAllLocked(_ bytes: [UInt8], to fd: Int32) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, -1)
                    continue
                }
                return errno
            }
            offset += n
        }
        return nil
    }

    /// Clears the footer's lines and leaves the cursor where the first one began.
    private func eraseFooterLocked() {
        guard footerDrawn > 0, failures[2] == nil else { return }
        var text = "\r\u{1B}[K"
        for _ in 1..<footerDrawn { text += "\u{1B}[1A\u{1B}[K" }
        footerDrawn = 0
        _ = writeAllLocked(Array(text.utf8), to: 2)
    }

    private func drawFooterLocked() {
        guard !footer.isEmpty, footerDrawn == 0, screenAtLineStart, failures[2] == nil else { return }
        let width = Terminal.columns(of: 2)
        let lines = footer.map { TerminalText.fit($0, columns: width - 1) }
        if writeAllLocked(Array(lines.joined(separator: "\n").utf8), to: 2) == nil { footerDrawn = lines.count }
    }

    /// The terminal's width (80 if it won't say).
    static func columns(of fd: Int32) -> Int {
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 1 else { return 80 }
        return Int(size.ws_col)
    }

    /// Tether's own messages: best effort (nothing to tell if stderr itself is gone).
    func out(_ text: String) { try? write(Array(text.utf8), to: 1) }
    func err(_ text: String) { try? write(Array(text.utf8), to: 2) }

    /// Ends the process after remote output could not be written: like any tool whose
    /// reader went away, quietly by SIGPIPE (status 141 in a shell); otherwise saying
    /// why, with status 1. What was not written was not acknowledged.
    func leave(after error: OutputWriteError) -> Never {
        setFooter([])
        TetherClient.shutdownEventLoop()
        if error.readerClosed {
            signal(SIGPIPE, SIG_DFL)
            raise(SIGPIPE)
        }
        err("tether: \(error.message); output not written stays on the host (tether receive collects it)\n")
        exit(1)
    }
}

/// One descriptor shared by several targets' `[computer] `-prefixed output. Lines come
/// out whole: a partial line is held back (and its record unacknowledged) until its
/// newline arrives. A line that outgrows `holdLimit` is written as it comes, and while
/// it lasts its target owns the descriptor: the others keep their lines until it ends,
/// so no prefix or newline is ever inserted inside a line.
final class PrefixedStream: Sendable {
    static let stdout = PrefixedStream(fd: 1)
    static let stderr = PrefixedStream(fd: 2)
    static let holdLimit = 64 * 1024

    let fd: Int32
    let lock = Lock()
    nonisolated(unsafe) var owner: LinePrefixer?          // guarded by lock
    nonisolated(unsafe) var waiting: [LinePrefixer] = []  // guarded by lock

    init(fd: Int32) { self.fd = fd }
}

/// One target's lines on a `PrefixedStream`. All state is guarded by the stream's lock.
final class LinePrefixer: @unchecked Sendable {
    private let prefix: [UInt8]
    private let stream: PrefixedStream
    /// Bytes not written yet; they start a line unless `midLine`.
    private var pending: [UInt8] = []
    /// Inside a long line this target already began writing (it owns the stream).
    private var midLine = false
    /// Holds on records whose bytes are still in `pending`: released once the byte
    /// count written passes their end.
    private var holds: [(end: Int, hold: OutputHold)] = []
    private var received = 0
    private var written = 0

    init(prefix: String, stream: PrefixedStream) {
        self.prefix = Array(prefix.utf8)
        self.stream = stream
    }

    /// Writes the complete lines it can; `hold` is asked for only if some of `bytes`
    /// stays behind (their record must not be acknowledged yet).
    func write(_ bytes: [UInt8], hold: () -> OutputHold) throws(OutputWriteError) {
        guard !bytes.isEmpty else { return }
        let failure: OutputWriteError? = stream.lock.withLock {
            pending += bytes
            received += bytes.count
            do throws(OutputWriteError) { try flushLocked() } catch { return error }
            if written < received { holds.append((received, hold())) }
            return nil
        }
        if let failure { throw failure }
    }

    /// The stream ends (or pauses: a drop notice, a lost connection): a partial line is
    /// closed with a newline. If another target owns the stream, it is written as soon
    /// as that one's line ends.
    func finish() throws(OutputWriteError) {
        let failure: OutputWriteError? = stream.lock.withLock {
            if (midLine && pending.isEmpty) || (!pending.isEmpty && pending.last != 0x0A) {
                pending.append(0x0A)
                received += 1
            }
            do throws(OutputWriteError) { try flushLocked() } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// Writes what may be written now. Under the stream's lock.
    private func flushLocked() throws(OutputWriteError) {
        if let owner = stream.owner, owner !== self {
            if !pending.isEmpty && !stream.waiting.contains(where: { $0 === self }) { stream.waiting.append(self) }
            return
        }
        var out: [UInt8] = []
        var taken = 0
        while let newline = pending[taken...].firstIndex(of: 0x0A) {
            if !midLine { out += prefix }
            out += pending[taken...newline]
            taken = newline + 1
            midLine = false
        }
        let rest = pending.count - taken
        if rest > 0 && (midLine || rest > PrefixedStream.holdLimit) {
            if !midLine { out += prefix }
            out += pending[taken...]
            taken = pending.count
            midLine = true
        }
        let wasOwner = stream.owner === self
        stream.owner = midLine ? self : nil
        try Terminal.shared.write(out, to: stream.fd)
        pending.removeFirst(taken)
        written += taken
        while let first = holds.first, first.end <= written {
            holds.removeFirst()
            first.hold.release()
        }
        if wasOwner && !midLine {
            // The long line ended: the others' lines may go out now.
            let others = stream.waiting
            stream.waiting.removeAll()
            for other in others where stream.owner == nil {
                try other.flushLocked()
            }
            for other in others where stream.owner != nil && other !== stream.owner && !other.pending.isEmpty {
                if !stream.waiting.contains(where: { $0 === other }) { stream.waiting.append(other) }
            }
        }
    }
}

/// Where one target's stdout and stderr go: straight through, or line-prefixed.
final class TargetOutput: Sendable {
    private let stdout: LinePrefixer?
    private let stderr: LinePrefixer?

    init(prefix: String?) {
        stdout = prefix.map { LinePrefixer(prefix: $0, stream: .stdout) }
        stderr = prefix.map { LinePrefixer(prefix: $0, stream: .stderr) }
    }

    /// Writes a chunk taken from `sequence`; if part of it must wait (a partial line),
    /// its record is held unacknowledged until that part is written.
    func stdout(_ bytes: [UInt8], from sequence: OutputSequence) throws(OutputWriteError) {
        if let stdout { try stdout.write(bytes) { sequence.holdLatest() } } else { try Terminal.shared.write(bytes, to: 1) }
    }

    func stderr(_ bytes: [UInt8], from sequence: OutputSequence) throws(OutputWriteError) {
        if let stderr { try stderr.write(bytes) { sequence.holdLatest() } } else { try Terminal.shared.write(bytes, to: 2) }
    }

    func finish() throws(OutputWriteError) {
        try stdout?.finish()
        try stderr?.finish()
    }

    /// `finish` on a path that ends with an error anyway: a failed write ends the process.
    func finishOrLeave() {
        do throws(OutputWriteError) { try finish() } catch { Terminal.shared.leave(after: error) }
    }
}
