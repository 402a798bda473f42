import Glibc
import TetherClient
import TetherIO

/// Host names for the shells' Tab completion of HOST arguments (`--computer`, `new
/// HOST`, `enter HOST`): the aliases `Host` lines of the ssh config name (the user's file —
/// or $TETHER_SSH_CONFIG — and /etc/ssh/ssh_config, through their `Include`s; patterns
/// with `*`, `?` or `!` are not names), and the computers of this client's sessions. A
/// comma list completes its last element (`web1,we<Tab>`). The shell scripts that
/// swift-argument-parser generates (`tether --generate-completion-script bash|zsh|fish`)
/// call back into `tether` for these.
enum HostCompletion {
    @Sendable static func complete(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        let (head, partial) = splitLast(prefix)
        let already = Set(head.split(separator: ",").map(String.init))
        return candidates()
            .filter { $0.hasPrefix(partial) && !already.contains($0) }
            .map { head + $0 }
    }

    /// Every name, sorted, without duplicates.
    static func candidates() -> [String] {
        var names = Set<String>()
        var visited = Set<String>()
        let home = Environment.homeDirectoryOfCurrentUser()
        let userConfig = Environment.get("TETHER_SSH_CONFIG") ?? home + "/.ssh/config"
        collectHosts(file: userConfig, relativeTo: home + "/.ssh", into: &names, visited: &visited)
        collectHosts(file: "/etc/ssh/ssh_config", relativeTo: "/etc/ssh", into: &names, visited: &visited)
        if let sessions = try? ClientHome.default.sessions.all() {
            for session in sessions { names.insert(session.computerName) }
        }
        return names.sorted()
    }

    /// "a,b,c" → ("a,b,", "c").
    private static func splitLast(_ text: String) -> (head: String, last: String) {
        guard let comma = text.lastIndex(of: ",") else { return ("", text) }
        return (String(text[...comma]), String(text[text.index(after: comma)...]))
    }

    private static func collectHosts(file: String, relativeTo base: String, into names: inout Set<String>,
                                     visited: inout Set<String>, depth: Int = 0) {
        guard depth < 16, visited.insert(file).inserted,
              let bytes = readSmallFile(file) else { return }
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "=" }).map(String.init)
            guard let keyword = words.first?.lowercased(), !keyword.hasPrefix("#") else { continue }
            let values = words.dropFirst().map { $0.replacingQuotes() }
            switch keyword {
            case "host":
                for value in values where !value.contains(where: { "*?!".contains($0) }) { names.insert(value) }
            case "include":
                for pattern in values {
                    let expanded = pattern.hasPrefix("~/") ? Environment.homeDirectoryOfCurrentUser() + pattern.dropFirst()
                        : pattern.hasPrefix("/") ? pattern : base + "/" + pattern
                    for path in glob(expanded) {
                        collectHosts(file: path, relativeTo: base, into: &names, visited: &visited, depth: depth + 1)
                    }
                }
            default:
                continue
            }
        }
    }

    /// A config file's bytes (nil if unreadable; at most 1 MiB: a completion must not stall).
    private static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    private static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }
    }
}

private extension String {
    func replacingQuotes() -> String { filter { $0 != "\"" } }
}
