import Dispatch
import Glibc
import TetherIO
import TetherProtocol

/// The local terminal while a command runs on a remote terminal (`invoke(terminal:)`):
/// raw mode in, restored on every way out.
///
/// Raw mode (cfmakeraw) sends every key to the remote program as typed: Ctrl-C, Ctrl-\
/// and Ctrl-D are bytes there, which the remote terminal turns into SIGINT (the command
/// is interrupted, the session stays), SIGQUIT (the program quits) and end of input;
/// Ctrl-Z reaches the program as a byte (a session has no job control). `restore()` puts
/// the saved settings back; it also runs from SIGTERM, SIGHUP and SIGQUIT handlers
/// (restore, then die of the signal as before) and at `exit`, so a killed client, a lost
/// connection or an error never leaves the terminal raw.
public final class TerminalMode: Sendable {
    public let fd: Int32

    /// The window size of the terminal on `fd`, nil if it is not one.
    public static func size(of fd: Int32 = 1) -> TerminalSize? {
        var window = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &window) == 0 else { return nil }
        return TerminalSize(rows: window.ws_row, columns: window.ws_col)
    }

    /// What `invoke(terminal:)` needs from this client's terminal: TERM (or "dumb") and
    /// the size of the terminal on `fd` (24×80 if it is not a terminal, as ssh -t does).
    public static func request(for fd: Int32 = 1) -> TerminalRequest {
        let term = getenv("TERM").map { String(cString: $0) } ?? "dumb"
        return TerminalRequest(term: term.isEmpty ? "dumb" : term,
                               size: size(of: fd) ?? TerminalSize(rows: 24, columns: 80))
    }

    /// Puts the terminal on `fd` in raw mode; nil (and nothing changed) if `fd` is not a
    /// terminal. Only one at a time: a second call while one is active returns nil.
    public static func enterRaw(fd: Int32 = 0) -> TerminalMode? {
        guard isatty(fd) == 1 else { return nil }
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        return terminalModeLock.withLock { () -> TerminalMode? in
            guard savedTerminal == nil else { return nil }
            savedTerminal = (fd, saved)
            installRestoringHandlers()
            guard tcsetattr(fd, TCSAFLUSH, &raw) == 0 else {
                savedTerminal = nil
                return nil
            }
            return TerminalMode(fd: fd)
        }
    }

    private init(fd: Int32) { self.fd = fd }

    /// The saved settings back (idempotent).
    public func restore() {
        terminalModeLock.withLock { restoreSavedTerminal() }
    }

    /// Calls `onResize` with the new size of the terminal on `fd` after each SIGWINCH,
    /// until the returned watcher is cancelled.
    public static func watchResizes(of fd: Int32 = 1, _ onResize: @escaping @Sendable (TerminalSize) -> Void) -> ResizeWatcher {
        signal(SIGWINCH, SIG_IGN)  // delivered to the dispatch source instead
        let source = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: DispatchQueue(label: "tether.sigwinch"))
        source.setEventHandler {
            if let size = size(of: fd) { onResize(size) }
        }
        source.resume()
        return ResizeWatcher(source: source)
    }

    /// Stops watching window size changes.
    public final class ResizeWatcher: @unchecked Sendable {  // DispatchSource is thread-safe
        private let source: DispatchSourceSignal
        init(source: DispatchSourceSignal) { self.source = source }
        public func cancel() { source.cancel() }
    }
}

// The saved settings, reachable from signal handlers and atexit (which can't capture).
nonisolated(unsafe) private var savedTerminal: (fd: Int32, settings: termios)?
nonisolated(unsafe) private var handlersInstalled = false
private let terminalModeLock = Lock()

private func restoreSavedTerminal() {
    guard var saved = savedTerminal else { return }
    _ = tcsetattr(saved.fd, TCSAFLUSH, &saved.settings)
    savedTerminal = nil
}

private func installRestoringHandlers() {
    guard !handlersInstalled else { return }
    handlersInstalled = true
    atexit { restoreSavedTerminal() }
    for signal in [SIGTERM, SIGHUP, SIGQUIT] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
            // tcsetattr is async-signal-safe; then die of the signal as before.
            if var saved = savedTerminal { _ = tcsetattr(saved.fd, TCSAFLUSH, &saved.settings) }
            Glibc.signal(number, SIG_DFL)
            raise(number)
        }
        sigemptyset(&action.sa_mask)
        sigaction(signal, &action, nil)
    }
}
