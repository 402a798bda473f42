import Glibc
import CTetherPosix
import TetherIO

/// A file bash sources, rewritten in place for every command: `path` is a symlink to an
/// in-memory file this process holds (`memfd`, through `/proc/<pid>/fd/<n>`), so bash's
/// messages name an ordinary path while no command creates or removes an inode. On ext4
/// a file created and unlinked per command cost ~85 µs (and truncating a real file to
/// rewrite it waits for writeback, ~1–3 ms); the memfd costs a few. Bash has read the
/// whole file (`source` reads it in one go) long before the next command rewrites it —
/// commands run one at a time. Without memfd (or /proc) a plain file stands in.
final class RewritableFile {
    let path: String
    /// Opened on first use.
    private var fd: Int32 = -1
    /// What `path` must point to while the memfd serves (nil: a plain file stands in).
    private var linkTarget: [UInt8]?
    /// The length of what the last `write` left.
    private var size = 0

    init(path: String) {
        self.path = path
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Replaces the contents with `bytes`.
    func write(_ bytes: [UInt8]) throws {
        // Someone removed or replaced it (a command cleaning up, a /tmp cleaner): make it
        // again rather than have bash fail every command from now on.
        if fd >= 0 && !isIntact {
            close(fd)
            fd = -1
        }
        if fd < 0 {
            fd = try open()
            size = 0
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + offset, bytes.count - offset, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("write \(path)")
            }
            offset += n
        }
        // Cut only what the last contents had beyond these (one syscall fewer per command
        // when it doesn't shrink, as for the same command again).
        if bytes.count < size {
            guard ftruncate(fd, off_t(bytes.count)) == 0 else { throw SystemError.last("truncate \(path)") }
        }
        size = bytes.count
    }

    /// The path still leads to our file (one readlink or stat, per command).
    private var isIntact: Bool {
        if let linkTarget {
            // Compared as bytes in a stack buffer: no array or string per command.
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer in
                let n = readlink(path, buffer.baseAddress!, buffer.count)
                guard n == linkTarget.count else { return false }
                return linkTarget.withUnsafeBytes { memcmp($0.baseAddress!, buffer.baseAddress!, n) == 0 }
            }
        }
        var onDisk = stat(), ours = stat()
        return stat(path, &onDisk) == 0 && fstat(fd, &ours) == 0 && onDisk.st_ino == ours.st_ino && onDisk.st_dev == ours.st_dev
    }

    private func open() throws -> Int32 {
        unlink(path)  // a leftover from an earlier runspace with this id
        let memory = tether_memfd_cloexec("tether-" + (path.split(separator: "/").last.map(String.init) ?? "file"))
        if memory >= 0 {
            let target = "/proc/\(getpid())/fd/\(memory)"
            if symlink(target, path) == 0 {
                linkTarget = Array(target.utf8)
                return memory
            }
            close(memory)
        }
        linkTarget = nil
        let file = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw SystemError.last("create \(path)") }
        return file
    }
}
