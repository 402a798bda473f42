import TetherIO

/// How strictly the host's key is checked against known_hosts (ssh's StrictHostKeyChecking).
public enum HostKeyChecking: String, Sendable, CaseIterable {
    /// Unknown or changed keys are refused.
    case yes
    /// Unknown keys are added to known_hosts; changed keys are refused.
    case acceptNew = "accept-new"
    /// Anything is accepted (tests only).
    case no
}

/// Per-connection overrides of what ~/.ssh/config says for a host. Everything defaults to
/// "use the ssh config".
public struct ConnectionOptions: Sendable, Equatable {
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

    /// Time allowed from starting the transport to the host's hello. Connection setup
    /// never hangs: with no explicit timeout, 30 s covers a slow login.
    var handshakeTimeout: Double {
        if let connectTimeout { return connectTimeout + 10 }
        return 30
    }
}
