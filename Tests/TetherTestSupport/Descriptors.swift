import Glibc
import CTetherPosix
import TetherIO

/// Blocking-with-a-deadline I/O on pipes: what a test's side of a child process needs.
/// Everything waits in poll(2) on the descriptor itself, never in a sleep loop.
public enum Descriptors {
    /// A pipe whose both ends are close-on-exec in this process (the child gets its end
    /// through Spawn's dup2, which clears the flag there).
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard tether_pipe2(&fds, Int32(O_CLOEXEC)) == 0 else { throw SystemError.last("pipe2") }
        return (fds[0], fds[1])
    }

    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Waits until `fd` is readable (or hung up). False when the deadline passed first.
    public static func waitReadable(_ fd: Int32, until deadline: Deadline) -> Bool {
        wait(fd, events: Int16(POLLIN), until: deadline)
    }

    public static func waitWritable(_ fd: Int32, until deadline: Deadline) -> Bool {
        wait(fd, events: Int16(POLLOUT), until: deadline)
    }

    private static func wait(_ fd: Int32, events: Int16, until deadline: Deadline) -> Bool {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&entry, 1, deadline.remainingMilliseconds)
            if n > 0 { return true }
            if n == 0 { return false }
            if errno != EINTR { return true }  // let the following read/write report it
        }
    }

    /// Reads what is available (after waiting for readability). `[]` means end of file;
    /// nil means the deadline passed.
    public static func readChunk(_ fd: Int32, until deadline: Deadline, max: Int = 256 * 1024) throws -> [UInt8]? {
        guard waitReadable(fd, until: deadline) else { return nil }
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, max) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR { continue }
            if errno == EAGAIN { return waitReadable(fd, until: deadline) ? try readChunk(fd, until: deadline, max: max) : nil }
            throw SystemError.last("read")
        }
    }

    /// Writes every byte to a non-blocking `fd`, waiting for room as needed.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], until deadline: Deadline, what: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                guard waitWritable(fd, until: deadline) else {
                    throw TestSupportError("timed out writing to \(what): \(bytes.count - offset) of \(bytes.count) bytes not accepted")
                }
                continue
            }
            throw SystemError.last("write to \(what)")
        }
    }

    /// The whole content of a (small) file, or nil if it cannot be opened.
    public static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 65536) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    public static func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError.last("open \(path)") }
        defer { close(fd) }
        _ = fchmod(fd, mode)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SystemError.last("write \(path)") }
            offset += n
        }
    }
}
