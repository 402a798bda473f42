import Glibc
import TetherIO

/// Whole writes to stdout/stderr from many concurrent tasks, one lock, no interleaving
/// inside a write. A closed stdout (`| head`) stops output, not the command.
final class Terminal: Sendable {
    static let shared = Terminal()
    private let lock = Lock()

    func write(_ bytes: [UInt8], to fd: Int32) {
        guard !bytes.isEmpty else { return }
        lock.withLock {
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
                    return  // EPIPE and friends: the reader is gone.
                }
                offset += n
            }
        }
    }

    func out(_ text: String) { write(Array(text.utf8), to: 1) }
    func err(_ text: String) { write(Array(text.utf8), to: 2) }
}

/// Prefixes every line of one target's stream with `[computer] ` (fan-out output), holding
/// back a partial line until its newline arrives or the stream ends.
final class LinePrefixer {
    private let prefix: [UInt8]
    private let fd: Int32
    private var partial: [UInt8] = []

    init(prefix: String, fd: Int32) {
        self.prefix = Array(prefix.utf8)
        self.fd = fd
    }

    func write(_ bytes: [UInt8]) {
        var out: [UInt8] = []
        var start = bytes.startIndex
        while let newline = bytes[start...].firstIndex(of: 0x0A) {
            out += prefix
            out += partial
            partial.removeAll()
            out += bytes[start...newline]
            start = newline + 1
        }
        partial += bytes[start...]
        if partial.count > 64 * 1024 {  // a huge line without newline: flush it as is
            out += prefix + partial + [0x0A]
            partial.removeAll()
        }
        Terminal.shared.write(out, to: fd)
    }

    func finish() {
        guard !partial.isEmpty else { return }
        Terminal.shared.write(prefix + partial + [0x0A], to: fd)
        partial.removeAll()
    }
}

/// Where one target's stdout and stderr go: straight through, or line-prefixed.
final class TargetOutput {
    private let stdout: LinePrefixer?
    private let stderr: LinePrefixer?

    init(prefix: String?) {
        stdout = prefix.map { LinePrefixer(prefix: $0, fd: 1) }
        stderr = prefix.map { LinePrefixer(prefix: $0, fd: 2) }
    }

    func stdout(_ bytes: [UInt8]) {
        if let stdout { stdout.write(bytes) } else { Terminal.shared.write(bytes, to: 1) }
    }

    func stderr(_ bytes: [UInt8]) {
        if let stderr { stderr.write(bytes) } else { Terminal.shared.write(bytes, to: 2) }
    }

    func finish() {
        stdout?.finish()
        stderr?.finish()
    }
}
