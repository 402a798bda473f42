import CTetherPosix
import Glibc
import TetherIO

/// The public keys an ssh-agent holds (SSH2_AGENTC_REQUEST_IDENTITIES), read before
/// connecting so the transport choice can tell "only RSA keys" from "an ed25519 key is
/// there too". A local socket answering in microseconds; a silent agent gets one second.
enum AgentKeys {
    static func list(socket path: String) -> [[UInt8]]? {
        let fd = Glibc.socket(AF_UNIX, tether_sock_stream() | tether_sock_cloexec(), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return nil }
        let request: [UInt8] = [0, 0, 0, 1, 11]
        guard write(fd, request, request.count) == request.count else { return nil }
        guard let header = readExactly(fd, 4) else { return nil }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length > 0, length < 1 << 20, let body = readExactly(fd, length), body[0] == 12 else { return nil }
        var reader = SSHWireReader(Array(body.dropFirst()))
        guard let count = reader.uint32() else { return nil }
        var keys: [[UInt8]] = []
        for _ in 0..<count {
            guard let blob = reader.string(), reader.string() != nil else { break }
            keys.append(blob)
        }
        return keys
    }

    private static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            got += n
        }
        return buffer
    }
}
