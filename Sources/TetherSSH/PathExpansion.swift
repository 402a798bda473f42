import Glibc
import TetherIO

/// OpenSSH's `~`, `%` tokens and `${VAR}` in IdentityFile, CertificateFile, IdentityAgent,
/// ProxyCommand, UserKnownHostsFile and HostName (`ssh -G` prints some of them unexpanded:
/// ssh expands them only when it connects).
struct PathExpansion {
    var home: String
    var localUser: String
    var remoteUser: String
    var hostName: String
    var alias: String
    var port: Int
    var hostKeyAlias: String? = nil

    /// Expands `~/`, `%d %u %r %h %n %p %l %L %i %k %%` and `${VAR}`. Unknown tokens and
    /// unset variables are errors, as in ssh.
    func expand(_ text: String, what: String, tilde: Bool = true) throws -> String {
        var text = text
        if tilde && text == "~" {
            text = home
        } else if tilde && text.hasPrefix("~/") {
            text = home + text.dropFirst(1)
        }
        var out = ""
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if character == "$", characters.first == "{" {
                guard let close = characters.firstIndex(of: "}") else {
                    throw SSHError(.configuration, host: alias, "\(what) '\(text)' has an unterminated ${…}")
                }
                let name = String(characters[characters.index(after: characters.startIndex)..<close])
                guard let value = Environment.get(name) else {
                    throw SSHError(.configuration, host: alias, "\(what) '\(text)': environment variable \(name) is not set")
                }
                out += value
                characters = characters[characters.index(after: close)...]
                continue
            }
            guard character == "%" else { out.append(character); continue }
            guard let token = characters.popFirst() else {
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
            case "L": out += String(Environment.hostName().prefix(while: { $0 != "." }))
            case "i": out += String(getuid())
            case "k": out += hostKeyAlias ?? hostName
            default:
                throw SSHError(.configuration, host: alias, "\(what) '\(text)' has unknown token '%\(token)' (known: %d %u %r %h %n %p %l %L %i %k %%)")
            }
        }
        return out
    }
}
