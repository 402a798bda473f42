/// What the user typed, split: "user@host:port", "host", "[v6]:port", "ssh://user@host:port".
struct SSHDestination: Equatable {
    var user: String?
    var host: String
    var port: Int?

    init(user: String? = nil, host: String, port: Int? = nil) {
        self.user = user
        self.host = host
        self.port = port
    }

    init(parsing text: String) throws {
        func bad(_ why: String) -> SSHError {
            SSHError(.configuration, host: text, "invalid destination: \(why)")
        }
        var rest = Substring(text.trimmingSpaces())
        if rest.isEmpty { throw bad("it is empty; expected host, user@host or user@host:port") }
        if rest.hasPrefix("ssh://") {
            rest = rest.dropFirst("ssh://".count)
            if rest.hasSuffix("/") { rest = rest.dropLast() }
        }
        // The user is everything before the last '@' (user names may contain '@' in some
        // directories; host names never do).
        if let at = rest.lastIndex(of: "@") {
            let user = rest[..<at]
            if user.isEmpty { throw bad("the user name before '@' is empty") }
            self.user = String(user)
            rest = rest[rest.index(after: at)...]
        }
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("'[' without a closing ']'") }
            let inside = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw bad("unexpected '\(after)' after ']'; expected ':port'")
            }
            rest = inside
        } else if rest.filter({ $0 == ":" }).count == 1, let colon = rest.firstIndex(of: ":") {
            portText = rest[rest.index(after: colon)...]
            rest = rest[..<colon]
        }
        // More than one ':' without brackets is a bare IPv6 address, with no port.
        if rest.isEmpty { throw bad("the host name is empty") }
        if rest.contains(where: { $0 == " " || $0 == "\t" || $0 == "/" }) {
            throw bad("the host name '\(rest)' contains a space or '/'")
        }
        self.host = String(rest)
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw bad("port '\(portText)' is not a number from 1 to 65535")
            }
            self.port = port
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" && $0 != "\n" && $0 != "\r" }) else { return "" }
        let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" && $0 != "\n" && $0 != "\r" })!
        return String(scalars[first...last])
    }
}
