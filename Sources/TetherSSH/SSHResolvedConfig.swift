/// What `ssh -G` printed for a destination: every keyword (lower-case) with its values, in
/// the order ssh printed them. Multi-valued keywords (`identityfile`, `certificatefile`,
/// `sendenv`…) repeat. This is OpenSSH's own resolution — system config, `Match` of every
/// kind, canonicalization, `Include`, tokens — so Tether connects with exactly what `ssh`
/// would.
public struct SSHResolvedConfig: Sendable, Equatable {
    public private(set) var lines: [(keyword: String, value: String)]

    public init(lines: [(keyword: String, value: String)]) {
        self.lines = lines
    }

    /// Parses `ssh -G` output: `keyword value…` per line.
    public init(parsing text: String) {
        var lines: [(String, String)] = []
        for line in text.split(whereSeparator: \.isNewline) {
            guard let space = line.firstIndex(of: " ") else {
                if !line.isEmpty { lines.append((line.lowercased(), "")) }
                continue
            }
            lines.append((line[..<space].lowercased(), String(line[line.index(after: space)...])))
        }
        self.lines = lines
    }

    /// The (first) value of a keyword, nil when ssh printed none.
    public func value(_ keyword: String) -> String? {
        lines.first(where: { $0.keyword == keyword })?.value
    }

    /// Every value of a repeatable keyword, in order.
    public func values(_ keyword: String) -> [String] {
        lines.filter { $0.keyword == keyword }.map(\.value)
    }

    /// The value split at blanks (UserKnownHostsFile, GlobalKnownHostsFile, BindAddress…).
    public func words(_ keyword: String) -> [String] {
        (value(keyword) ?? "").split(separator: " ").map(String.init)
    }

    /// ssh prints yes/no as "yes", "true", "no", "false".
    public func flag(_ keyword: String) -> Bool? {
        switch value(keyword)?.lowercased() {
        case "yes", "true": true
        case "no", "false": false
        default: nil
        }
    }

    /// A comma-separated algorithm list, with `+`/`-`/`^` already applied by ssh.
    public func list(_ keyword: String) -> [String] {
        (value(keyword) ?? "").split(separator: ",").map(String.init)
    }

    /// The whole output again (for `tether -G`).
    public var text: String {
        lines.map { $0.value.isEmpty ? $0.keyword : "\($0.keyword) \($0.value)" }.joined(separator: "\n") + "\n"
    }

    public static func == (lhs: SSHResolvedConfig, rhs: SSHResolvedConfig) -> Bool {
        lhs.lines.map(\.keyword) == rhs.lines.map(\.keyword) && lhs.lines.map(\.value) == rhs.lines.map(\.value)
    }
}
