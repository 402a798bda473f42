import Glibc
import TetherIO

/// Where a client's keeper listens: one keeper per TETHER_HOME, in a 0700 directory of
/// the user's (`$XDG_RUNTIME_DIR/tether`, else `/tmp/tether-client-UID`).
///
/// The socket's name is a hash of everything a keeper takes from the CLI that started it
/// rather than from each request: the TETHER_HOME path, the ssh-agent socket (the keeper
/// authenticates with its own `SSH_AUTH_SOCK`), and the identity of the `tether`
/// executable (so an upgraded binary never talks to an old keeper: it starts its own and
/// the old one idles out).
struct KeeperPaths: Sendable, Equatable {
    let directory: String
    let name: String

    var socket: String { "\(directory)/\(name).sock" }
    var lock: String { "\(directory)/\(name).lock" }
    var log: String { "\(directory)/\(name).log" }

    init(directory: String, name: String) {
        self.directory = directory
        self.name = name
    }

    /// The keeper for `home`, run by `executable`, in this process's environment.
    init(home: ClientHome, executable: String) {
        let directory = Self.runtimeDirectory
        var hash = FNV1a()
        hash.add(Self.absolute(home.directory))
        hash.add(Environment.get("SSH_AUTH_SOCK") ?? "")
        hash.add(Self.fingerprint(of: executable))
        self.init(directory: directory, name: "keeper-" + hash.hex)
    }

    /// The client's per-user runtime directory (keeper sockets, the `ssh -G` cache).
    static var runtimeDirectory: String {
        if let runtime = Environment.get("XDG_RUNTIME_DIR") { return runtime + "/tether" }
        return "/tmp/tether-client-\(geteuid())"
    }

    /// The socket path with the directory derived from the socket (the keeper's own view).
    init(socket: String) {
        var directory = "."
        var file = socket
        if let slash = socket.lastIndex(of: "/") {
            directory = slash == socket.startIndex ? "/" : String(socket[..<slash])
            file = String(socket[socket.index(after: slash)...])
        }
        if file.hasSuffix(".sock") { file.removeLast(5) }
        self.init(directory: directory, name: file)
    }

    /// `path` made absolute and, if it exists, canonical (so `./home` and its full path
    /// share one keeper).
    static func absolute(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        return String(cString: buffer) + "/" + path
    }

    /// Path, inode, size and modification time: changes whenever the binary is replaced.
    static func fingerprint(of executable: String) -> String {
        var info = stat()
        guard stat(executable, &info) == 0 else { return executable }
        return "\(executable)|\(info.st_ino)|\(info.st_size)|\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }
}

/// 64-bit FNV-1a: a stable, dependency-free hash for file names (not for security).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ text: String) {
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        value ^= 0xff
        value = value &* 0x0000_0100_0000_01b3
    }

    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
