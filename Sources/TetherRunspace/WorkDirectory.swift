import Glibc
import TetherIO

/// The session's private directory (`<runtime>/sessions/<id>.d`, 0700): the files bash
/// sources for a command — the command's script and, for a command with arguments, a
/// terminal or stdin, the driver around it (`RewritableFile`s; a plain command's driver is
/// bash's `__tether_run`, see `DriverLine`) — and a FIFO for a command that takes stdin.
/// Removed with the session.
final class WorkDirectory {
    let path: String
    /// The command itself (behind `DriverLine.scriptPrefix`).
    let script: RewritableFile
    /// What runs it: traps, stdin, "$@" (`DriverLine.driverFile`), when not plain.
    let driver: RewritableFile

    static let scriptName = DriverLine.scriptName
    static let driverName = "run.sh"

    /// Creates (or checks) the directory: ours, 0700.
    init(path: String) throws {
        self.path = path
        try SecureDirectory.prepare(path)
        script = RewritableFile(path: path + "/" + WorkDirectory.scriptName)
        driver = RewritableFile(path: path + "/" + WorkDirectory.driverName)
    }

    /// Makes the directory again if a cleaner removed it (one access(2) when it is there),
    /// for what writes into it by path outside `prepare` (a job's script).
    func ensureExists() throws {
        if access(path, F_OK) != 0 { try SecureDirectory.prepare(path) }
    }

    /// The session's stream FIFO (`StreamPipe`) and the directory of the `tether-*`
    /// commands for programs the command starts (`StreamFunctions`).
    var streamsPath: String { path + "/streams" }
    var commandsPath: String { path + "/bin" }

    /// The session's stream FIFO and the bash its `bin/` commands name, once made by
    /// `makeStreamFiles`: what `restoreStreamFiles` makes again.
    private var streams: StreamPipe?
    private var streamCommandsBash: String?

    /// The session's stream FIFO and `bin/tether-*` commands (the interpreter reads the one
    /// and puts the other on bash's PATH), remembered so that a cleaner's removal of the
    /// directory can be repaired (`restoreStreamFiles`).
    func makeStreamFiles(reactor: Reactor, bash: String) throws -> StreamPipe {
        let pipe = try StreamPipe(reactor: reactor, path: streamsPath)
        try writeStreamCommands(bash: bash)
        streams = pipe
        streamCommandsBash = bash
        return pipe
    }

    /// After a cleaner removed the directory or files in it (`rm -rf` of the runtime
    /// directory, tmpfiles aging): the directory, the stream FIFO and the `tether-*`
    /// commands made again where the session's shell expects them ($TETHER_STREAMS and
    /// PATH still name them), so `tether-warning` and the others keep working. A few
    /// lstat(2)s when everything is there.
    func restoreStreamFiles() throws {
        try ensureExists()
        try streams?.restoreIfGone()
        if let bash = streamCommandsBash,
           StreamFunctions.names.contains(where: { access(commandsPath + "/" + $0, X_OK) != 0 }) {
            try writeStreamCommands(bash: bash)
        }
    }

    /// Writes `bin/tether-progress` and the others (0700 directory, 0700 scripts run by
    /// `bash`).
    func writeStreamCommands(bash: String) throws {
        let directory = commandsPath
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw SystemError.last("mkdir \(directory)") }
        for name in StreamFunctions.names {
            let file = directory + "/" + name
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o700)
            guard fd >= 0 else { throw SystemError.last("open \(file)") }
            defer { close(fd) }
            let bytes = Array(StreamFunctions.script(name: name, bash: bash).utf8)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                throw SystemError.last("write \(file)")
            }
        }
    }

    func stdinName(_ commandID: UInt64) -> String { "stdin-\(commandID)" }
    func stdinPath(_ commandID: UInt64) -> String { path + "/" + stdinName(commandID) }

    /// Writes the next command's script (and, unless the command is plain, its driver) over
    /// the last ones, and returns the line bash's stdin gets to run it. If a command
    /// removed the directory itself, it is made again (0700, ours) first.
    func prepare(script text: String, arguments: [String], stdinName: String?,
                 terminal: (slave: String, term: String)? = nil) throws -> String {
        var bytes = DriverLine.scriptFileBytes(text)
        // A final newline so a last line ending in a comment or `\` can't swallow anything.
        if bytes.last != 0x0a { bytes.append(0x0a) }
        let plain = DriverLine.isPlain(arguments: arguments, stdinName: stdinName, terminal: terminal)
        let driverText = plain ? [] : Array(DriverLine.driverFile(scriptName: WorkDirectory.scriptName,
                                                                  arguments: arguments, stdinName: stdinName,
                                                                  terminal: terminal).utf8)
        func write() throws {
            try script.write(bytes)
            if !plain { try driver.write(driverText) }
        }
        do {
            try write()
        } catch where access(path, F_OK) != 0 {
            // Checked only on failure, not per command: the directory itself is gone — and
            // with it the stream FIFO and the `tether-*` commands the command may use.
            try SecureDirectory.prepare(path)
            try restoreStreamFiles()
            try write()
        }
        return plain ? DriverLine.plainCommand : DriverLine.command(driverName: WorkDirectory.driverName)
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
