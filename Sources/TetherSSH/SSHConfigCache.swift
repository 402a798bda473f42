import Glibc
import TetherIO

/// Remembers `ssh -G` answers so a command in an existing session doesn't pay for an ssh
/// process (~5–13 ms here) each time. An entry is used only while everything the answer
/// could depend on is unchanged:
///
/// - the key: ssh's argv, the `ssh` binary (path, inode, size, mtime), HOME, USER,
///   LOGNAME, SSH_AUTH_SOCK, the uid, the host name (%l, %L) and the working directory;
/// - every config file ssh read, the directory of every `Include` glob in them or that
///   matched nothing (a new file there changes the directory's mtime), and the user's
///   and system's config paths even when absent (inode, size, mtime — a missing file is
///   recorded as missing);
/// - the value of each `${VAR}` the read files mention.
///
/// Answers that ran a `Match exec` or canonicalized a host name (DNS) are never stored.
/// Entries live in the keeper's 0700 runtime directory (a tmpfs: gone at reboot), one file
/// each, written atomically, and hold nothing secret (ssh -G prints no secrets).
struct SSHConfigCache {
    let directory: String

    private static let magic = "tether-ssh-G 1"

    struct Key {
        var text: String

        init(ssh: String, arguments: [String]) {
            var parts = ["ssh=" + Self.fingerprint(ssh)]
            parts += arguments.map { "arg=" + $0 }
            for name in ["HOME", "USER", "LOGNAME", "SSH_AUTH_SOCK"] {
                parts.append("\(name)=\(Environment.get(name) ?? "-")")
            }
            parts.append("uid=\(getuid())")
            parts.append("host=\(Environment.hostName())")
            var buffer = [CChar](repeating: 0, count: 4096)
            parts.append("cwd=" + (getcwd(&buffer, buffer.count) != nil ? String(cString: buffer) : "?"))
            text = parts.map(Self.escape).joined(separator: " ")
        }

        static func fingerprint(_ path: String) -> String {
            "\(path)|\(FileStamp(path).text)"
        }

        static func escape(_ text: String) -> String {
            var out = ""
            for character in text {
                switch character {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case " ": out += "\\s"
                default: out.append(character)
                }
            }
            return out
        }

        var fileName: String {
            var hash = FNVHash()
            hash.add(text)
            return "ssh-G-" + hash.hex
        }
    }

    /// Inode, size and modification time of a path, or "missing".
    struct FileStamp: Equatable {
        var text: String
        /// Seconds since the epoch of the last change (0 when missing).
        var changed: Int = 0

        init(_ path: String) {
            var info = stat()
            if stat(path, &info) == 0 {
                // ctime too: any write, rename over or chmod changes it, and nobody can set it back.
                text = "\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
                changed = info.st_mtim.tv_sec
            } else {
                text = "missing"
            }
        }
    }

    /// The cached output for `key`, if every dependency is unchanged.
    func lookup(_ key: Key) -> String? {
        let path = directory + "/" + key.fileName
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else { return nil }
        guard let bytes = try? ConfigFileReader.readAll(fd, path: path) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.firstRange(of: "\n--\n") else { return nil }
        let header = text[..<split.lowerBound].split(separator: "\n")
        guard header.count >= 2, header[0] == Self.magic, header[1] == "key " + key.text else { return nil }
        for line in header.dropFirst(2) {
            if line.hasPrefix("stat ") {
                let rest = line.dropFirst(5)
                guard let space = rest.firstIndex(of: " ") else { return nil }
                let stamp = String(rest[..<space])
                let file = String(rest[rest.index(after: space)...])
                guard FileStamp(file).text == stamp else { return nil }
            } else if line.hasPrefix("env ") {
                let rest = line.dropFirst(4)
                guard let equals = rest.firstIndex(of: "=") else { return nil }
                let name = String(rest[..<equals])
                guard Key.escape(Environment.get(name) ?? "-") == rest[rest.index(after: equals)...] else { return nil }
            } else {
                return nil
            }
        }
        return String(text[split.upperBound...])
    }

    /// Stores an answer, unless it depends on something we can't watch. Failures to write
    /// only cost the next command another `ssh -G`.
    func store(_ key: Key, answer: OpenSSHConfigQuery.Answer, watching defaults: [String], home: String) {
        guard !answer.ranCommand, answer.warnings.isEmpty else { return }
        let canonicalize = answer.config.value("canonicalizehostname")?.lowercased() ?? "false"
        guard canonicalize == "false" || canonicalize == "no" else { return }
        var watched: [String] = []
        func watch(_ path: String) {
            if !watched.contains(path) { watched.append(path) }
        }
        var environmentNames: [String] = []
        for file in answer.filesRead + defaults {
            watch(file)
            guard let text = try? ConfigFileReader.read(file) else { continue }
            for name in Self.environmentReferences(in: text) where !environmentNames.contains(name) {
                environmentNames.append(name)
            }
            // A file created later that an Include glob matches changes the answer: watch
            // the glob's directory (its mtime changes when an entry is added or removed).
            let relativeTo = file.hasPrefix("/etc/ssh/") ? "/etc/ssh" : home + "/.ssh"
            for pattern in Self.includePatterns(in: text) {
                watch(Self.directory(ofGlob: pattern, relativeTo: relativeTo, home: home))
            }
        }
        for pattern in answer.emptyIncludes {
            watch(Self.directory(ofGlob: pattern, relativeTo: home + "/.ssh", home: home))
        }
        let stamps = watched.map { ($0, FileStamp($0)) }
        // A file changed within the last two seconds may change again within its mtime's
        // granularity, or after ssh read it but before we stamped it (git's "racy" rule).
        let now = time(nil)
        guard !stamps.contains(where: { $0.1.changed >= now - 2 }) else { return }
        var lines = [Self.magic, "key " + key.text]
        lines += stamps.map { "stat \($0.1.text) \($0.0)" }
        lines += environmentNames.map { "env \($0)=\(Key.escape(Environment.get($0) ?? "-"))" }
        let contents = lines.joined(separator: "\n") + "\n--\n" + answer.output
        do {
            try SecureDirectory.prepare(directory)
            try Self.writeAtomically(contents, to: directory + "/" + key.fileName)
        } catch {
            return
        }
    }

    /// The arguments of every `Include` line (any case, `Include=` too).
    static func includePatterns(in text: String) -> [String] {
        var patterns: [String] = []
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "=" })
            guard let first = words.first, first.lowercased() == "include" else { continue }
            patterns += words.dropFirst().map { String($0).replacingQuotes() }
        }
        return patterns
    }

    /// The directory a glob's matches live in: the part before the first wildcard.
    static func directory(ofGlob pattern: String, relativeTo base: String, home: String) -> String {
        var path = pattern
        if path.hasPrefix("~/") { path = home + path.dropFirst(1) }
        if !path.hasPrefix("/") { path = base + "/" + path }
        let fixed = path.prefix(while: { $0 != "*" && $0 != "?" && $0 != "[" })
        return parent(of: String(fixed) + (fixed.count == path.count ? "" : "x"))
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `${NAME}` references (ssh expands them in several path keywords).
    static func environmentReferences(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.firstRange(of: "${") {
            rest = rest[open.upperBound...]
            guard let close = rest.firstIndex(of: "}") else { break }
            names.append(String(rest[..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    private static func writeAtomically(_ text: String, to path: String) throws {
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SystemError.last("open \(temporary)") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(temporary)
                throw SystemError.last("write \(temporary)")
            }
            written += n
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw SystemError.last("rename \(temporary)")
        }
    }
}

extension String {
    func replacingQuotes() -> String { filter { $0 != "\"" } }
}

/// 64-bit FNV-1a over text, for cache file names (the entry holds the full key, which is
/// compared on every lookup: a collision costs a miss, never a wrong answer).
struct FNVHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ text: String) {
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
    }

    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
