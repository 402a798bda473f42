import Glibc

/// Reading the one-line "ok" / "error: …" a freshly spawned daemon (registry, keeper,
/// runspace) writes on its ready pipe — before any event loop runs, so it blocks in
/// poll(2) with a deadline instead of sleeping.
public enum StartupLine {
    /// Bytes up to the first newline or EOF; nil if the deadline passes first.
    public static func read(from fd: Int32, timeout: Double) -> [UInt8]? {
        let deadline = Reactor.now() + UInt64(timeout * 1e9)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let now = Reactor.now()
            guard now < deadline else { return nil }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32((deadline - now) / 1_000_000) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                return received
            }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return received }
            if n == 0 { return received }
            received.append(contentsOf: buffer[0..<n])
            if received.contains(0x0a) { return received }
        }
    }
}
