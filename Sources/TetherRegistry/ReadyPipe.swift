import Glibc
import TetherIO

/// The pipe a child writes one line on ("ok", or "error: why") once it is ready.
/// The write end goes to the child as fd 3; the read end stays with us.
public struct ReadyPipe {
    public let readEnd: Int32
    public let writeEnd: Int32

    /// The child's descriptor number for the write end (its `--ready-fd`).
    public static let childFD: Int32 = 3

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError.last("pipe") }
        for fd in fds { setCloseOnExec(fd) }
        readEnd = fds[0]
        // dup2(3, 3) in the child would keep close-on-exec set and the child would find
        // fd 3 closed, so the write end must not already be 3.
        if fds[1] == ReadyPipe.childFD {
            let moved = fcntl(fds[1], F_DUPFD_CLOEXEC, 10)
            close(fds[1])
            guard moved >= 0 else {
                close(fds[0])
                throw SystemError.last("fcntl(F_DUPFD_CLOEXEC)")
            }
            writeEnd = moved
        } else {
            writeEnd = fds[1]
        }
    }

    /// What the child said, from the bytes up to its first newline (or EOF).
    public enum Report: Equatable, Sendable {
        case ready
        case failed(String)
    }

    public static func interpret(_ bytes: [UInt8], role: String) -> Report {
        let text = String(decoding: bytes.prefix { $0 != 0x0a }, as: UTF8.self)
        if text == "ok" { return .ready }
        if text.isEmpty { return .failed("the \(role) exited before it was ready") }
        if text.hasPrefix("error: ") { return .failed(String(text.dropFirst("error: ".count))) }
        return .failed("the \(role) said: \(text)")
    }
}
