import TetherIO

/// OpenSSH's `~` and `%` tokens in IdentityFile, UserKnownHostsFile and HostName.
struct PathExpansion {
    var home: String
    var localUser: String
    var remoteUser: String
    var hostName: String
    var alias: String
    var port: Int

    /// Expands `~/`, `%d %u %h %r %n %p %l %%`. Unknown tokens are an error, as in ssh.
    func expand(_ text: String, what: String) throws -> String {
        var text = text
        if text == "~" {
            text = home
        } else if text.hasPrefix("~/") {
            text = home + text.dropFirst(1)
        }
        var out = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "%" else { out.append(character); continue }
            guard let token = iterator.next() else {
                throw SSHError(.configuration, host: alias, "\(what) '\(text)' ends with a lone '%'")
            }
            switch token {
            case "%": out.append("%")
            case "d": out += home
            case "u": out += localUser
            case "r": out += remoteUser
            case "h": out += hostName
            case "n": out += alias
            case "p": out += String(port)
            case "l": out += Environment.hostName()
            default:
                throw SSHError(.configuration, host: alias, "\(what) '\(text)' has unknown token '%\(token)' (known: %d %u %r %h %n %p %l %%)")
            }
        }
        return out
    }
}
