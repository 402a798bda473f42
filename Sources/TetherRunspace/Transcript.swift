import Glibc
import TetherIO

/// `Transcript yes`: one line per command in the system log, where the user can't alter
/// or remove it — as sudo does, through the syslog socket (`/dev/log`, read by journald
/// or rsyslog) with facility authpriv. Written by hand rather than with syslog(3) so that
/// the socket can be another (`tether-subsystem --syslog-socket PATH`, for tests); the
/// datagram is the one syslog(3) sends: `<PRI>Mmm dd hh:mm:ss tether[PID]: MESSAGE`.
///
/// The socket is written without blocking (MSG_DONTWAIT): a stalled log must not stall the
/// session's loop. A command's first line must get through or the command does not run;
/// a line that can't be sent now (the log's queue is full) waits here, in order, and goes
/// out before the next one.
final class Transcript {
    static let defaultSocket = "/dev/log"
    /// authpriv (10) × 8 + notice (5), sudo's choice for what it allowed; warning (4) for refusals.
    static let allowedPriority: Int32 = 10 * 8 + 5
    static let refusedPriority: Int32 = 10 * 8 + 4
    /// The most bytes of a command's text a line quotes.
    static let maxCommandBytes = 2000

    /// Lines kept for a log that could not take them yet.
    static let maxPending = 1000

    let socketPath: String
    private var pending: [[UInt8]] = []
    private var lost = 0

    init(socketPath: String) {
        self.socketPath = socketPath
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends one line after any that wait. With `required`, fails unless this line (and
    /// every line before it) got through: a transcribed configuration then refuses to
    /// run the command rather than run it unrecorded. Otherwise a line the log can't take
    /// now waits for the next write.
    func write(_ message: String, priority: Int32, required: Bool) throws(Failure) {
        let datagram = Self.datagram(message, priority: priority)
        do {
            try flush()
            try send(datagram)
        } catch {
            guard !required else { throw error }
            if pending.count >= Self.maxPending {
                pending.removeFirst()
                lost += 1
            }
            pending.append(datagram)
        }
    }

    private func flush() throws(Failure) {
        while let first = pending.first {
            try send(first)
            pending.removeFirst()
        }
        if lost > 0 {
            try send(Self.datagram("\(lost) transcript line\(lost == 1 ? " was" : "s were") lost: the system log did not take them", priority: Self.refusedPriority))
            lost = 0
        }
    }

    private static func datagram(_ message: String, priority: Int32) -> [UInt8] {
        var stamp = [CChar](repeating: 0, count: 32)
        var now = time(nil)
        var local = tm()
        localtime_r(&now, &local)
        _ = strftime(&stamp, stamp.count, "%b %e %H:%M:%S", &local)
        let header = "<\(priority)>\(String(cString: stamp)) tether[\(getpid())]: "
        return Array((header + message).utf8)
    }

    private func send(_ bytes: [UInt8]) throws(Failure) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(description: "\(socketPath): path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard sent == bytes.count else {
            throw Failure(description: "sending to \(socketPath): \(String(cString: strerror(errno)))")
        }
    }

    /// A command's text for a log line: control characters escaped (one line per entry),
    /// long texts cut with a mark.
    static func quoted(_ text: String) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= maxCommandBytes {
                result += "…[\(text.utf8.count) bytes]"
                break
            }
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\\": result += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    result += "\\x" + String(scalar.value, radix: 16)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
            count += String(scalar).utf8.count
        }
        return result
    }
}
