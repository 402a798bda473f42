import Glibc
import TetherIO

/// The no-double-registry guarantee: an exclusive `flock` on `registry.pid`, held for the
/// registry's whole life (the kernel drops it when the process dies, however it dies), with
/// our pid written inside for people and tests.
struct RegistryPIDLock {
    enum Outcome {
        case acquired(RegistryPIDLock)
        /// A live registry holds the lock; its pid as written in the file, if readable.
        case heldByAnotherRegistry(pid: Int32?)
    }

    /// Kept open (and so locked) until the process exits.
    let fd: Int32

    static func acquire(path: String) throws -> Outcome {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.last("open \(path)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            defer { close(fd) }
            if error == EWOULDBLOCK {
                return .heldByAnotherRegistry(pid: readPID(fd))
            }
            throw SystemError("flock \(path)", errno: error)
        }
        let line = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0,
              line.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, 0) }) == line.count else {
            let error = SystemError.last("write \(path)")
            close(fd)
            throw error
        }
        return .acquired(RegistryPIDLock(fd: fd))
    }

    /// `path` still names the file we hold locked (false once a cleaner removed it: a
    /// registry started then would lock a new file and run beside us).
    func isIntact(path: String) -> Bool {
        var onDisk = stat(), ours = stat()
        return stat(path, &onDisk) == 0 && fstat(fd, &ours) == 0
            && onDisk.st_ino == ours.st_ino && onDisk.st_dev == ours.st_dev
    }

    /// Gives up the lock on a file nobody can reach any more.
    func release() { close(fd) }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        return Int32(String(text.prefix { $0.isNumber }))
    }
}
