import Glibc
import TetherIO

/// The CLI's offer of its stdout to its keeper: each keeper stream opened afterwards
/// passes the descriptor along with its open request (SCM_RIGHTS) and the keeper writes
/// the stream's stdout records into it itself (`DescriptorSink`), so the output's bytes
/// skip the CLI — a read and a write per byte in the CLI, one in the keeper.
///
/// Only where the bytes go out unchanged and their order with stderr can't be seen to
/// change, and where every stdout record the stream brings is for stdout: `invoke` with
/// one session, no `[computer]` prefixes, no `--json`, no `--tty`, and not after a
/// resume (a reception drops replayed records and stops at a seq the keeper can't
/// know: `withdraw`); `offerStandardOutput` further refuses a terminal, a stdout that is the
/// same file as stderr (`>out 2>&1`: the CLI keeps writing both, in order), and anything
/// the keeper's one event loop could block on. What it passes never changes the file
/// description the user's shell shares: a pipe is reopened (/proc/self/fd/1) as a new,
/// non-blocking description of the same pipe; a socket is written with MSG_DONTWAIT; a
/// regular file or a memory device (/dev/null, /dev/full) as it is (their writes don't
/// wait on a reader).
public enum KeeperDirectOutput {
    private static let lock = Lock()
    nonisolated(unsafe) private static var offered: Int32 = -1  // guarded by lock

    /// The descriptor to pass with each open request, or nil.
    static var descriptor: Int32? {
        lock.withLock { offered >= 0 ? offered : nil }
    }

    /// Streams opened from now on carry output through the keeper's socket again (a
    /// resume: see `Reconnector.resume`).
    public static func withdraw() {
        lock.withLock {
            if offered >= 0 { close(offered) }
            offered = -1
        }
    }

    /// Offers fd 1 to the keeper for the streams opened from now on; false when it can't
    /// be (output then crosses the keeper's socket, as always). Call once, before
    /// connecting. `TETHER_KEEPER_DIRECT=0` turns it off.
    @discardableResult
    public static func offerStandardOutput() -> Bool {
        if let setting = Environment.get("TETHER_KEEPER_DIRECT"), ["0", "off", "no"].contains(setting.lowercased()) {
            return false
        }
        guard isatty(1) == 0 else { return false }
        var out = stat()
        guard fstat(1, &out) == 0 else { return false }
        var err = stat()
        // (/dev/null keeps no order to keep: `>/dev/null 2>&1` is fine.)
        let isNull = out.st_mode & S_IFMT == S_IFCHR && out.st_rdev == 0x103
        if fstat(2, &err) == 0 && err.st_dev == out.st_dev && err.st_ino == out.st_ino && !isNull { return false }
        let descriptor: Int32
        switch out.st_mode & S_IFMT {
        case S_IFIFO:
            // Its own open file description: O_NONBLOCK there leaks into nobody's.
            // (ENXIO: nobody reads the pipe any more; the CLI's own write says so.)
            descriptor = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        case S_IFSOCK:
            var type: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(1, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return false }
            descriptor = fcntl(1, F_DUPFD_CLOEXEC, 3)
        case S_IFREG:
            descriptor = fcntl(1, F_DUPFD_CLOEXEC, 3)
        case S_IFCHR where DescriptorSink.major(out.st_rdev) == 1:  // memory devices: /dev/null, /dev/full
            descriptor = fcntl(1, F_DUPFD_CLOEXEC, 3)
        default:
            return false
        }
        guard descriptor >= 0 else { return false }
        lock.withLock {
            if offered >= 0 { close(offered) }
            offered = descriptor
        }
        return true
    }
}
