import TetherIO

/// How strictly the host's key is checked against known_hosts (ssh's StrictHostKeyChecking).
public enum HostKeyChecking: String, Sendable, CaseIterable, Codable {
    /// Unknown or changed keys are refused.
    case yes
    /// ssh's default: a person at the terminal decides about an unknown key; refused
    /// when there is no terminal.
    case ask
    /// Unknown keys are added to known_hosts; changed keys are refused.
    case acceptNew = "accept-new"
    /// Anything is accepted (tests only).
    case no
}

/// Which SSH implementation carries a connection.
public enum TransportPreference: String, Sendable, CaseIterable, Codable {
    /// libssh2 (through the keeper), unless the destination needs something only OpenSSH's
    /// `ssh` can do (certificates, FIDO keys, RSA-only on libssh2 1.10…): then `ssh`,
    /// saying why on stderr. The default.
    case auto
    /// Always libssh2, even where it can't do what ssh would (the reason is then an error).
    case libssh2
    /// Always the system `ssh` binary.
    case openssh

    /// `TETHER_TRANSPORT`: openssh (or ssh), libssh2, auto; unset = auto.
    static var fromEnvironment: TransportPreference {
        switch Environment.get("TETHER_TRANSPORT")?.lowercased() {
        case "openssh", "ssh": .openssh
        case "libssh2": .libssh2
        default: .auto
        }
    }
}

/// Per-connection overrides of what ~/.ssh/config says for a host. Everything defaults to
/// "use the ssh config".
public struct ConnectionOptions: Sendable, Equatable, Codable {
    /// An ssh config file instead of ~/.ssh/config (ssh -F). Default: $TETHER_SSH_CONFIG.
    public var configFile: String?
    public var port: Int?
    public var user: String?
    /// Private keys to try (ssh -i), before the config's.
    public var identityFiles: [String]
    /// The SSH subsystem to start on the host. Default: "tether".
    public var subsystem: String?
    /// Seconds to wait for TCP connect and for the whole handshake.
    public var connectTimeout: Double?
    public var strictHostKeyChecking: HostKeyChecking?
    /// `ssh -o KEY=VALUE` options, in order: any keyword ssh knows (first value wins).
    public var sshOptions: [String] = []
    /// `ssh -J`: jump hosts, comma-separated.
    public var jumpHosts: String?
    /// libssh2, OpenSSH, or the automatic choice; nil = $TETHER_TRANSPORT, else auto.
    public var transport: TransportPreference?
    /// `-v`: 1 and more print how the destination was resolved, which transport was
    /// chosen and why, and what the keeper did, to stderr. Not remembered with a session.
    public var verbosity = 0
    /// The host's gateway socket, from an earlier connection's hello (`RemoteHost.reconnect`
    /// sets it): the channel goes straight there, with the subsystem as the fallback.
    var gatewaySocket: String?

    public init(configFile: String? = nil, port: Int? = nil, user: String? = nil,
                identityFiles: [String] = [], subsystem: String? = nil,
                connectTimeout: Double? = nil, strictHostKeyChecking: HostKeyChecking? = nil) {
        self.configFile = configFile
        self.port = port
        self.user = user
        self.identityFiles = identityFiles
        self.subsystem = subsystem
        self.connectTimeout = connectTimeout
        self.strictHostKeyChecking = strictHostKeyChecking
    }

    /// The config file to use: the explicit one, else $TETHER_SSH_CONFIG.
    var effectiveConfigFile: String? {
        configFile ?? Environment.get("TETHER_SSH_CONFIG")
    }

    var effectiveSubsystem: String { subsystem ?? "tether" }

    var effectiveTransport: TransportPreference { transport ?? .fromEnvironment }

    /// The options worth remembering with a session (how it was reached): everything a
    /// user chose about the destination, not the moment's verbosity or gateway.
    public var remembered: ConnectionOptions {
        var copy = self
        copy.verbosity = 0
        copy.gatewaySocket = nil
        return copy
    }

    /// `self`, with every option `newer` sets taking its place (the command line wins over
    /// what a session remembered).
    public func overridden(by newer: ConnectionOptions) -> ConnectionOptions {
        var merged = self
        if let value = newer.configFile { merged.configFile = value }
        if let value = newer.port { merged.port = value }
        if let value = newer.user { merged.user = value }
        if !newer.identityFiles.isEmpty { merged.identityFiles = newer.identityFiles + identityFiles }
        if let value = newer.subsystem { merged.subsystem = value }
        if let value = newer.connectTimeout { merged.connectTimeout = value }
        if let value = newer.strictHostKeyChecking { merged.strictHostKeyChecking = value }
        // ssh: the first value of a keyword wins, so the newer options go first.
        if !newer.sshOptions.isEmpty { merged.sshOptions = newer.sshOptions + sshOptions }
        if let value = newer.jumpHosts { merged.jumpHosts = value }
        if let value = newer.transport { merged.transport = value }
        merged.verbosity = max(verbosity, newer.verbosity)
        return merged
    }

    /// True when nothing is set (a session reached with the plain ssh config).
    public var isEmpty: Bool { remembered == ConnectionOptions() }

    /// Time allowed from starting the transport to the host's hello. Connection setup
    /// never hangs: with no explicit timeout, 30 s covers a slow login.
    var handshakeTimeout: Double {
        if let connectTimeout { return connectTimeout + 10 }
        return 30
    }
}
