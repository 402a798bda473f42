import TetherIO

/// How strictly a host's key is checked against known_hosts (OpenSSH's StrictHostKeyChecking).
public enum HostKeyPolicy: String, Sendable, Codable {
    /// Unknown hosts are refused; the user adds them deliberately.
    case yes
    /// ssh's default: an unknown key is shown and the person at the terminal decides; with
    /// no terminal to ask on it is refused. Changed keys are refused.
    case ask
    /// Unknown hosts are added to the first known_hosts file; changed keys are refused.
    case acceptNew = "accept-new"
    /// Anything is accepted (tests, throwaway hosts). Changed keys are accepted too.
    case no
}

/// Where and how to connect, after ~/.ssh/config and overrides are applied.
public struct SSHTarget: Sendable, Equatable {
    /// What the user typed (the host part), for messages.
    public var alias: String
    /// The host to connect to, after `HostName`.
    public var hostName: String
    public var port: Int
    public var user: String
    /// Expanded (~, %d %u %h %r %%), in order. The defaults (~/.ssh/id_ed25519, id_ecdsa,
    /// id_rsa) when none are configured.
    public var identityFiles: [String]
    public var identitiesOnly: Bool
    /// `UserKnownHostsFile`; the first one is where accept-new writes.
    public var knownHostsFiles: [String]
    /// `GlobalKnownHostsFile`: consulted, never written.
    public var globalKnownHostsFiles: [String] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
    public var strictHostKeyChecking: HostKeyPolicy
    /// Seconds for the whole connection setup; 10 when nil at connect time.
    public var connectTimeout: Double?
    /// ServerAliveInterval: seconds of silence before a keepalive (nil: not set, the
    /// client's default applies). The client sends Tether-level pings
    /// (`LivenessWatch`); libssh2's own keepalive can't be used (see docs/architecture.md).
    public var serverAliveInterval: Double?
    /// ServerAliveCountMax: keepalives that may go unanswered (nil: not set).
    public var serverAliveCountMax: Int?
    /// The sshd subsystem to start.
    public var subsystem: String
    /// The host's Tether gateway socket, when a previous connection's hello named it: the
    /// channel is opened straight to it, and the subsystem is the fallback.
    public var gatewaySocket: String?
    /// ProxyCommand or ProxyJump, resolved to an argv: the connection runs over this
    /// program's stdin and stdout instead of a TCP socket.
    public var proxyCommand: [String]?
    /// The rest of what OpenSSH resolved that the libssh2 transport honours.
    public var preferences = SSHPreferences()

    public init(alias: String, hostName: String, port: Int = 22, user: String,
                identityFiles: [String], identitiesOnly: Bool = false,
                knownHostsFiles: [String], strictHostKeyChecking: HostKeyPolicy = .acceptNew,
                connectTimeout: Double? = nil, serverAliveInterval: Double? = nil,
                subsystem: String = "tether") {
        self.alias = alias
        self.hostName = hostName
        self.port = port
        self.user = user
        self.identityFiles = identityFiles
        self.identitiesOnly = identitiesOnly
        self.knownHostsFiles = knownHostsFiles
        self.strictHostKeyChecking = strictHostKeyChecking
        self.connectTimeout = connectTimeout
        self.serverAliveInterval = serverAliveInterval
        self.subsystem = subsystem
    }

    /// The name known_hosts uses for this host: `host`, or `[host]:port` off port 22;
    /// `HostKeyAlias` replaces both, as is (ssh adds no port to an alias).
    public var knownHostsName: String {
        if let alias = preferences.hostKeyAlias { return alias }
        return port == 22 ? hostName : "[\(hostName)]:\(port)"
    }

    /// "host:port", or "[v6]:port".
    public var endpoint: String {
        hostName.contains(":") ? "[\(hostName)]:\(port)" : "\(hostName):\(port)"
    }

    /// "alias" or "alias (host:port)" when the alias doesn't say where it goes.
    public var displayName: String {
        alias == hostName && port == 22 ? alias : "\(alias) (\(endpoint))"
    }
}

/// What OpenSSH resolved beyond where to connect, as the libssh2 transport uses it. The
/// defaults are ssh's own (and what the built-in parser gives).
public struct SSHPreferences: Sendable, Equatable, Hashable, Codable {
    /// `HostKeyAlias`: the name looked up in (and written to) known_hosts.
    public var hostKeyAlias: String?
    /// `BindAddress`: the local address the TCP socket is bound to.
    public var bindAddress: String?
    /// `AddressFamily`: any, inet or inet6.
    public var addressFamily = "any"
    /// Algorithm lists as ssh resolved them (`+`/`-`/`^` applied); empty = libssh2's own.
    public var ciphers: [String] = []
    public var macs: [String] = []
    public var kexAlgorithms: [String] = []
    public var hostKeyAlgorithms: [String] = []
    /// `CertificateFile`s, expanded (offered with the identity file whose key they
    /// certify, where libssh2 can: 1.11 and later).
    public var certificateFiles: [String] = []
    /// `IdentityAgent`: nil for $SSH_AUTH_SOCK, "none" for no agent, else the socket path.
    public var identityAgent: String?
    /// `HashKnownHosts`: names added to known_hosts are hashed.
    public var hashKnownHosts = false
    /// `PubkeyAuthentication`.
    public var publicKeyAuthentication = true
    /// `PasswordAuthentication` / `KbdInteractiveAuthentication`, on a terminal only.
    public var passwordAuthentication = true
    public var keyboardInteractiveAuthentication = true
    /// `BatchMode`: never ask a person anything.
    public var batchMode = false
    /// `NumberOfPasswordPrompts`.
    public var passwordPrompts = 3
    /// `PreferredAuthentications`: the order methods are tried in (ssh's default).
    public var preferredAuthentications = ["gssapi-with-mic", "hostbased", "publickey", "keyboard-interactive", "password"]

    public init() {}
}

/// Command-line or API values that win over the ssh config file.
public struct SSHOverrides: Sendable {
    public var port: Int?
    public var user: String?
    /// Tried before any configured identity files.
    public var identityFiles: [String]
    /// The ssh config file to read instead of $TETHER_SSH_CONFIG or ~/.ssh/config.
    public var configFile: String?
    public var subsystem: String?
    public var connectTimeout: Double?
    public var strictHostKeyChecking: HostKeyPolicy?
    /// `ssh -o KEY=VALUE`, in order (the first value of a keyword wins, as in ssh).
    public var options: [String] = []
    /// `ssh -J`: jump hosts, comma-separated.
    public var jumpHosts: String?
    /// Where `ssh -G` answers may be cached (a 0700 directory of the user's); nil: no cache.
    public var cacheDirectory: String?

    public init(port: Int? = nil, user: String? = nil, identityFiles: [String] = [],
                configFile: String? = nil, subsystem: String? = nil,
                connectTimeout: Double? = nil, strictHostKeyChecking: HostKeyPolicy? = nil) {
        self.port = port
        self.user = user
        self.identityFiles = identityFiles
        self.configFile = configFile
        self.subsystem = subsystem
        self.connectTimeout = connectTimeout
        self.strictHostKeyChecking = strictHostKeyChecking
    }
}


extension SSHTarget {
    /// How silence from the host is judged (ServerAliveInterval × ServerAliveCountMax, or
    /// the client's default when the config sets neither); nil with ServerAliveInterval 0.
    public var liveness: LivenessWatch.Settings? {
        LivenessWatch.Settings.fromConfig(interval: serverAliveInterval, countMax: serverAliveCountMax)
    }
}
