import Glibc
import TetherIO

/// The keeper's diary (`keeper-HASH.log` beside its socket, 0600): links made, lost and
/// closed, refused peers. Never a passphrase, key or command: only destinations and
/// reasons. Started afresh when it has grown past 1 MiB.
final class KeeperLog {
    private let fd: Int32

    init(path: String) {
        var info = stat()
        let tooBig = stat(path, &info) == 0 && info.st_size > 1 << 20
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (tooBig ? O_TRUNC : 0)
        fd = open(path, flags, 0o600)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// A message written less than `repeatWindow` seconds ago is counted, not written
    /// again: a CLI retrying through an outage makes the keeper dial every 50 ms, and two
    /// lines per attempt would fill the log. The next time it is written it says how
    /// often it was held back.
    static let repeatWindow: Double = 60
    private var recent: [String: (writtenAt: Double, heldBack: Int)] = [:]

    func write(_ message: String) {
        guard fd >= 0 else { return }
        let now = Double(Reactor.now()) / 1e9
        if let last = recent[message], now - last.writtenAt < Self.repeatWindow {
            recent[message] = (last.writtenAt, last.heldBack + 1)
            return
        }
        let heldBack = recent[message]?.heldBack ?? 0
        if recent.count > 256 { recent = recent.filter { now - $0.value.writtenAt < Self.repeatWindow } }
        recent[message] = (now, 0)
        writeLine(heldBack == 0 ? message : "\(message) (and \(heldBack) times more since it was last written)")
    }

    private func writeLine(_ message: String) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let stamp = String(Int(parts.tm_year) + 1900) + "-" + two(parts.tm_mon + 1) + "-" + two(parts.tm_mday)
            + "T" + two(parts.tm_hour) + ":" + two(parts.tm_min) + ":" + two(parts.tm_sec) + "Z"
        let line = Array("\(stamp) keeper[\(getpid())]: \(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    private func two(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
