import Glibc

/// The "ok\n" / "error: …\n" line the registry waits for on the ready descriptor.
struct ReadyLine {
    let fd: Int32?

    func succeed() {
        send("ok\n")
    }

    func fail(_ message: String) -> Never {
        let line = "error: " + message.split(separator: "\n").joined(separator: " ") + "\n"
        if fd != nil {
            send(line)
        } else {
            _ = Array(line.utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
        exit(1)
    }

    private func send(_ line: String) {
        guard let fd else { return }
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        close(fd)
    }
}
