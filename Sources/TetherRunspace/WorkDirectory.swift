import Glibc
import TetherIO

/// The session's private directory (`<runtime>/sessions/<id>.d`, 0700): one script file per
/// command, and a FIFO for a command that takes stdin. Removed with the session.
struct WorkDirectory {
    let path: String

    /// Creates (or checks) the directory: ours, 0700.
    init(path: String) throws {
        self.path = path
        try SecureDirectory.prepare(path)
    }

    func scriptName(_ commandID: UInt64) -> String { "command-\(commandID).sh" }
    func stdinName(_ commandID: UInt64) -> String { "stdin-\(commandID)" }
    func scriptPath(_ commandID: UInt64) -> String { path + "/" + scriptName(commandID) }
    func stdinPath(_ commandID: UInt64) -> String { path + "/" + stdinName(commandID) }

    /// Writes a command's script (behind `DriverLine.scriptPrefix`).
    func writeScript(_ script: String, commandID: UInt64) throws {
        let file = scriptPath(commandID)
        unlink(file)  // a leftover from an earlier runspace with this id
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.last("create \(file)") }
        defer { close(fd) }
        var bytes = Array(DriverLine.scriptFile(script).utf8)
        // A final newline so a last line ending in a comment or `\` can't swallow anything.
        if bytes.last != 0x0a { bytes.append(0x0a) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("write \(file)")
            }
            offset += n
        }
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

    /// Removes a command's files (ignores ones that are already gone).
    func removeFiles(commandID: UInt64) {
        unlink(scriptPath(commandID))
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
