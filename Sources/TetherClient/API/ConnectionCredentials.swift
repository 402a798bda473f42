import TetherSSH

// The TetherSSH types a caller needs for `ConnectionCredentials`, under TetherClient.
public typealias PassphraseProvider = TetherSSH.PassphraseProvider
public typealias HostKeyProblem = TetherSSH.HostKeyProblem
public typealias HostKeyVerdict = TetherSSH.HostKeyVerdict
public typealias MemoryKey = TetherSSH.MemoryKey

/// What a program (rather than a person at a terminal) supplies for an SSH login:
/// `TetherClient.connect(_:options:credentials:)`. Kept out of `ConnectionOptions`, which
/// is remembered with sessions: nothing here is ever written down.
///
/// A connection with credentials is made in this process with libssh2, never through the
/// keeper (another process) or OpenSSH's `ssh`, which could not call back: a destination
/// that needs `ssh` (certificates, FIDO keys…) fails with a `.usage` error saying why.
public struct ConnectionCredentials: Sendable {
    /// Asked for the passphrase of an encrypted key (identity file or in-memory key without
    /// one) instead of the terminal / SSH_ASKPASS; nil from it skips that key.
    public var passphrases: (any PassphraseProvider)?
    /// Decides about a host key known_hosts does not vouch for — unknown, or changed —
    /// instead of StrictHostKeyChecking (a @revoked key is refused regardless). Called on
    /// the client's event loop: answer without blocking for long.
    public var hostKeyDecision: (@Sendable (HostKeyProblem) -> HostKeyVerdict)?
    /// Private keys held in memory, offered before the agent's keys and identity files.
    public var keys: [MemoryKey]

    public init(passphrases: (any PassphraseProvider)? = nil,
                hostKeyDecision: (@Sendable (HostKeyProblem) -> HostKeyVerdict)? = nil,
                keys: [MemoryKey] = []) {
        self.passphrases = passphrases
        self.hostKeyDecision = hostKeyDecision
        self.keys = keys
    }

    var isEmpty: Bool { passphrases == nil && hostKeyDecision == nil && keys.isEmpty }

    /// Puts them on a libssh2 connection before it starts.
    func apply(to connection: SSHConnection) {
        if let passphrases { connection.passphraseProvider = passphrases }
        connection.hostKeyDecision = hostKeyDecision
        connection.memoryKeys = keys
    }
}
