import Glibc

/// sshd's rule for the files it trusts (StrictModes, `secure_path`): owned by a trusted
/// user and writable by nobody else — the file and every directory above it. A sticky
/// directory writable by all (`/tmp`) is fine when root owns it: others can't replace
/// what is in it.
enum FileSafety {
    enum Kind { case file, directory, program }

    static func problem(_ path: String, trustedOwner: uid_t, kind: Kind) -> String? {
        var info = stat()
        // A program may be a link (/usr/bin/awk → alternatives): what runs is its target.
        let found = kind == .program ? stat(path, &info) : lstat(path, &info)
        guard found == 0 else { return "cannot stat \(path): \(String(cString: strerror(errno)))" }
        let type = info.st_mode & S_IFMT
        switch kind {
        case .directory where type != S_IFDIR: return "\(path) is not a directory"
        case .file where type != S_IFREG, .program where type != S_IFREG:
            return type == S_IFLNK ? "\(path) is a symbolic link: name the file itself" : "\(path) is not a regular file"
        default: break
        }
        if let problem = ownership(path, info, trustedOwner: trustedOwner) { return problem }
        // Every directory above, up to /.
        var parent = path
        while let slash = parent.lastIndex(of: "/"), parent != "/" {
            parent = slash == parent.startIndex ? "/" : String(parent[..<slash])
            var above = stat()
            guard stat(parent, &above) == 0 else { return "cannot stat \(parent): \(String(cString: strerror(errno)))" }
            let sticky = above.st_mode & S_ISVTX != 0 && above.st_uid == 0
            if !sticky, let problem = ownership(parent, above, trustedOwner: trustedOwner) {
                return "\(problem) (it holds \(path))"
            }
        }
        return nil
    }

    private static func ownership(_ path: String, _ info: stat, trustedOwner: uid_t) -> String? {
        guard info.st_uid == 0 || info.st_uid == trustedOwner else {
            let owners = trustedOwner == 0 ? "root" : "root or uid \(trustedOwner)"
            return "\(path) is owned by uid \(info.st_uid), not \(owners): refusing to trust it"
        }
        guard info.st_mode & 0o022 == 0 else {
            return "\(path) is writable by \(info.st_mode & 0o020 != 0 ? "its group" : "others") (mode \(String(info.st_mode & 0o7777, radix: 8))): refusing to trust it; run chmod go-w \(path)"
        }
        return nil
    }

    struct FileProblem: Error { var message: String }

    /// The whole file as UTF-8 text, at most 1 MiB.
    static func read(_ path: String) -> Result<String, FileProblem> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(FileProblem(message: "cannot open \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(FileProblem(message: "cannot read \(path): \(String(cString: strerror(errno)))"))
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
            if bytes.count > 1 << 20 { return .failure(FileProblem(message: "\(path) is larger than 1 MiB")) }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(FileProblem(message: "\(path) is not valid UTF-8"))
        }
        return .success(text)
    }
}

/// What a parsed configuration names on disk: it must exist now (`sshd -t` checks keys
/// and paths the same way), and a program a restricted rule allows must be as safe from
/// replacement as the configuration itself.
enum ConfigurationFileChecks {
    static func problems(_ configuration: SessionConfiguration, trustedOwner: uid_t) -> [ConfigurationDiagnostic] {
        let file = configuration.file ?? configuration.name
        var found: [ConfigurationDiagnostic] = []
        func fail(_ message: String, line: Int = 0) { found.append(ConfigurationDiagnostic(file: file, line: line, message: message)) }
        if let directory = configuration.workingDirectory, !directory.contains("%") {
            var info = stat()
            if stat(directory, &info) != 0 || info.st_mode & S_IFMT != S_IFDIR {
                fail("WorkingDirectory \(directory) is not an existing directory", line: configuration.lines["WorkingDirectory"] ?? 0)
            }
        }
        if let script = configuration.startupScript {
            var info = stat()
            if stat(script, &info) != 0 || info.st_mode & S_IFMT != S_IFREG {
                fail("StartupScript \(script) is not an existing file", line: configuration.lines["StartupScript"] ?? 0)
            } else if let problem = problem(script, trustedOwner: trustedOwner) {
                fail("StartupScript: \(problem)", line: configuration.lines["StartupScript"] ?? 0)
            }
        }
        for rule in configuration.commands {
            if let problem = FileSafety.problem(rule.path, trustedOwner: trustedOwner, kind: .program) {
                fail("Command \(rule.path): \(problem)", line: rule.line)
                continue
            }
            var info = stat()
            if stat(rule.path, &info) == 0 && info.st_mode & 0o111 == 0 {
                fail("Command \(rule.path) is not executable", line: rule.line)
            }
        }
        return found
    }

    private static func problem(_ path: String, trustedOwner: uid_t) -> String? {
        FileSafety.problem(path, trustedOwner: trustedOwner, kind: .file)
    }
}
