import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol

/// The pseudo-terminal of one command run with a terminal (`invoke` flag 16).
///
/// A fresh pty per command: bash is a session leader without a controlling terminal, so
/// when the driver opens the slave for the command (`<>/dev/pts/N`) it becomes bash's
/// controlling terminal with bash's process group in the foreground — the command (run by
/// bash itself, no fork for the shell part) can read `/dev/tty`, and Ctrl-C typed into
/// the master reaches the group as SIGINT, like an interrupt. When the command has ended
/// and its output is read, the master is closed: the terminal hangs up, bash (which traps
/// SIGHUP for this) loses it, and later commands have no terminal again, as `ssh host cmd`.
///
/// Keystrokes (`stdinData`) are written to the master; what the command writes is read
/// from it and journaled as `stdout`.
final class CommandTerminal {
    let slavePath: String
    let term: String
    private let master: Int32
    private let input: PipeWriter
    let output: OutputPipe

    init(reactor: Reactor, request: TerminalRequest) throws {
        let fd = tether_posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError.last("posix_openpt") }
        var path = [CChar](repeating: 0, count: 128)
        guard tether_grantpt(fd) == 0, tether_unlockpt(fd) == 0,
              tether_ptsname_r(fd, &path, path.count) == 0 else {
            let error = SystemError.last("preparing the pseudo-terminal")
            Glibc.close(fd)
            throw error
        }
        master = fd
        slavePath = String(cString: path)
        term = request.term.isEmpty || request.term.utf8.contains(0) ? "dumb" : request.term
        // The slave's settings, through a descriptor of our own (no controlling terminal
        // for us): Ctrl-Z suspends nothing — bash shares the terminal's foreground group and
        // a stopped bash would be a stuck session — so it reaches the program as a byte.
        let slave = open(slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC)
        if slave >= 0 {
            var settings = termios()
            if tcgetattr(slave, &settings) == 0 {
                withUnsafeMutableBytes(of: &settings.c_cc) { $0[Int(VSUSP)] = 0 }
                _ = tcsetattr(slave, TCSANOW, &settings)
            }
            Glibc.close(slave)
        }
        input = PipeWriter(reactor: reactor, fd: fd, name: "terminal \(slavePath)")
        input.onError = { _ in }
        // The output side reads a duplicate, so each side closes its own descriptor.
        output = OutputPipe(reactor: reactor, fd: fcntl(fd, F_DUPFD_CLOEXEC, 0), kind: .stdout)
        resize(request.size)
    }

    /// Sets the window size; the kernel sends SIGWINCH to the foreground group.
    func resize(_ size: TerminalSize) {
        var window = winsize(ws_row: size.rows, ws_col: size.columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &window)
    }

    /// Keystrokes from the client.
    func write(_ bytes: [UInt8]) { input.write(bytes) }

    /// Closes the master: the terminal hangs up.
    func close() {
        input.close()
        output.close()
    }
}
