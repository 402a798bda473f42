/// Why an SSH connection could not be made or ended badly. One line, specific, for people.
public struct SSHError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case dnsFailure, unreachable, connectionRefused, timeout
        case hostKeyUnknown, hostKeyChanged, hostKeyUnverifiable
        case authenticationFailed, subsystemUnavailable, disconnected, libssh2, configuration
    }

    public var kind: Kind
    /// The alias, or "alias (host:port)".
    public var host: String
    public var message: String

    public init(_ kind: Kind, host: String, _ message: String) {
        self.kind = kind
        self.host = host
        self.message = message
    }

    /// "web1 (10.0.0.5:2222): host key has changed — …". Callers add their "tether: " prefix.
    public var description: String {
        host.isEmpty ? message : "\(host): \(message)"
    }

    /// Host-key problems are what OpenSSH exits 255 for without retrying: a retry can't help.
    public var isHostKeyProblem: Bool {
        kind == .hostKeyUnknown || kind == .hostKeyChanged || kind == .hostKeyUnverifiable
    }
}
