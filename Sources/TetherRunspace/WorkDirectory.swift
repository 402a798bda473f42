import Glibc
import CTetherPosix
import TetherIO

/// The session's private directory (`<runtime>/sessions/<id>.d`, 0700): the script file
/// bash sources, and a FIFO for a command that takes stdin. Removed with the session.
///
/// One script file for all commands, rewritten in place: `command.sh` is a symlink to an
/// in-memory file this process holds (`memfd`, through `/proc/<pid>/fd/<n>`), so bash's
/// messages name an ordinary path while no command creates or removes an inode. On ext4
/// a file created and unlinked per command cost ~85 µs (and truncating a real file to
/// rewrite it waits for writeback, ~1–3 ms); the memfd costs a few. Bash has read the
/// whole script (`source` reads it in one go) long before the next is written — commands
/// run one at a time. Without memfd (or /proc) a plain file stands in.
final class WorkDirectory {
    let path: String
    /// The script file, opened on first use.
    private var scriptFD: Int32 = -1

    /// Creates (or checks) the directory: ours, 0700.
    init(path: String) throws {
        self.path = path
        try SecureDirectory.prepare(path)
    }

    deinit { if scriptFD >= 0 { close(scriptFD) } }

    let scriptName = "command.sh"
    func stdinName(_ commandID: UInt64) -> String { "stdin-\(commandID)" }
    var scriptPath: String { path + "/" + scriptName }
    func stdinPath(_ commandID: UInt64) -> String { path + "/" + stdinName(commandID) }

    /// Writes the next command's script (behind `DriverLine.scriptPrefix`) over the last.
    func writeScript(_ script: String) throws {
        if scriptFD < 0 { scriptFD = try openScriptFile() }
        var bytes = Array(DriverLine.scriptFile(script).utf8)
        // A final newline so a last line ending in a comment or `\` can't swallow anything.
        if bytes.last != 0x0a { bytes.append(0x0a) }
        guard ftruncate(scriptFD, 0) == 0 else { throw SystemError.last("truncate \(scriptPath)") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(scriptFD, $0.baseAddress! + offset, bytes.count - offset, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("write \(scriptPath)")
            }
            offset += n
        }
    }

    private func openScriptFile() throws -> Int32 {
        unlink(scriptPath)  // a leftover from an earlier runspace with this id
        let memory = tether_memfd_cloexec("tether-command")
        if memory >= 0 {
            if symlink("/proc/\(getpid())/fd/\(memory)", scriptPath) == 0 { return memory }
            close(memory)
        }
        let fd = open(scriptPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.last("create \(scriptPath)") }
        return fd
    }

    /// Makes a command's stdin FIFO and opens it read-write and non-blocking: holding both
    /// ends means bash's `< fifo` open(2) returns at once, and our writes never get EPIPE.
    /// Returns the path and our descriptor.
    func openStdinFIFO(commandID: UInt64) throws -> (path: String, fd: Int32) {
        let file = stdinPath(commandID)
        unlink(file)
        guard mkfifo(file, 0o600) == 0 else { throw SystemError.last("mkfifo \(file)") }
        let fd = open(file, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let error = SystemError.last("open \(file)")
            unlink(file)
            throw error
        }
        return (file, fd)
    }

    /// Removes a command's stdin FIFO, if it had one (the script file stays for the next).
    func removeFiles(commandID: UInt64) {
        unlink(stdinPath(commandID))
    }

    /// Removes the directory and everything in it (a command may have put files there).
    func removeAll() {
        WorkDirectory.removeTree(path)
    }

    private static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
