import Glibc
import TetherIO

/// The host log (`<state>/host.log`): one line per event, appended with O_APPEND so the
/// registry and subsystems can share it without interleaving inside a line. Never logs
/// scripts, output or anything else a user typed beyond session names.
public final class HostLog: @unchecked Sendable {
    private let fd: Int32
    private let tag: String

    /// Opens `path` for appending; if that fails, logging is silently off (a log problem
    /// must never stop a session from working).
    public init(path: String, tag: String) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        self.tag = "\(tag)[\(getpid())]"
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    public func write(_ message: String) {
        guard fd >= 0 else { return }
        let line = "\(WallClock.iso8601(WallClock.now())) \(tag) \(message)\n"
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
