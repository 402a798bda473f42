/// A host key that known_hosts does not vouch for, put to a library caller's
/// `SSHConnection.hostKeyDecision` (instead of StrictHostKeyChecking's rule).
public struct HostKeyProblem: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No known_hosts line for this host and key type.
        case unknown
        /// known_hosts has another key of this type for the host (`knownEntry` says where).
        case changed
    }

    public var kind: Kind
    /// The name known_hosts knows the host by ("[127.0.0.1]:2222", a HostKeyAlias…).
    public var hostName: String
    /// "ED25519", "ECDSA", …
    public var keyType: String
    /// "SHA256:…", as ssh prints it.
    public var fingerprint: String
    /// For `.changed`: "FILE:LINE" of the key known_hosts has.
    public var knownEntry: String?
    /// The public key blob the server sent.
    public var keyBlob: [UInt8]

    public init(kind: Kind, hostName: String, keyType: String, fingerprint: String, knownEntry: String?, keyBlob: [UInt8]) {
        self.kind = kind
        self.hostName = hostName
        self.keyType = keyType
        self.fingerprint = fingerprint
        self.knownEntry = knownEntry
        self.keyBlob = keyBlob
    }
}

/// What the caller decided about a `HostKeyProblem`.
public enum HostKeyVerdict: Sendable, Equatable {
    /// Refuse the connection (as ssh does for a changed key).
    case reject
    /// Trust the key for this connection only.
    case accept
    /// Trust it and add it to the first UserKnownHostsFile (hashed under HashKnownHosts),
    /// beside any older key of the host.
    case acceptAndRecord
}

/// A private key held in memory (a secret store, an environment a program was handed)
/// rather than in a file: OpenSSH or PEM text, as in an identity file.
public struct MemoryKey: Sendable {
    /// How messages name the key ("deploy key from vault").
    public var label: String
    public var privateKey: [UInt8]
    /// For an encrypted key; nil asks the connection's passphrase provider.
    public var passphrase: String?

    public init(label: String = "in-memory key", privateKey: [UInt8], passphrase: String? = nil) {
        self.label = label
        self.privateKey = privateKey
        self.passphrase = passphrase
    }
}
