#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherIO
import TetherProtocol

/// Questions to a running keeper, for `tether keeper --status` and `--stop`. Blocking,
/// bounded by `timeout`; a keeper that isn't running is `nil`, never started for this.
public enum KeeperControl {
    /// The keeper's state as pretty JSON (pid, socket, links with their use counts), or
    /// nil if no keeper runs for `home` and `executable`.
    public static func status(home: ClientHome, executable: String, timeout: Double = 5) throws -> String? {
        guard let reply = try ask(.status, home: home, executable: executable, timeout: timeout) else { return nil }
        guard case .status(let status) = reply else {
            throw TetherClientError(.localState, "the tether keeper answered \(reply) to a status request")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(status), as: UTF8.self)
    }

    /// Asks the keeper to close its links and exit; false if none was running.
    public static func stop(home: ClientHome, executable: String, timeout: Double = 5) throws -> Bool {
        try ask(.stop, home: home, executable: executable, timeout: timeout) != nil
    }

    /// Where the keeper for `home` and `executable` listens (and logs: same name, `.log`).
    public static func socketPath(home: ClientHome, executable: String) -> String {
        KeeperPaths(home: home, executable: executable).socket
    }

    private static func ask(_ request: KeeperRequest, home: ClientHome, executable: String,
                            timeout: Double) throws -> KeeperReply? {
        let paths = KeeperPaths(home: home, executable: executable)
        guard let fd = try KeeperLauncher.connectIfServing(paths) else { return nil }
        defer { close(fd) }
        let deadline = Reactor.now() + UInt64(timeout * 1e9)
        let bytes = KeeperCodec.requestFrame(request).encoded()
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("write to the tether keeper")
            }
            written += n
        }
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let frame = try decoder.next() { return try KeeperCodec.decodeReply(frame) }
            let now = Reactor.now()
            guard now < deadline else {
                throw TetherClientError(.localState, "the tether keeper (\(paths.socket)) did not answer within \(Int(timeout)) s")
            }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32((deadline - now) / 1_000_000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                throw TetherClientError(.localState, "the tether keeper (\(paths.socket)) closed the connection without an answer")
            }
            decoder.append(buffer[0..<n])
        }
    }
}
