import TetherProtocol

/// Every failure the client library reports: one line a person can act on, plus a kind
/// a program (and the CLI's exit code) can switch on.
public struct TetherClientError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Could not reach, authenticate to, or keep the connection with the host; host key
        /// problems; the `tether` subsystem missing. The CLI exits 255 like ssh.
        case connection
        /// An established connection ended under a running command or reception (the
        /// network cut, sshd or the subsystem gone, the keeper's link or the keeper
        /// lost). The session and its command go on on the host: this one is resumable
        /// (`RemoteSession.resume(from:)` on a new connection). Exit 255.
        case connectionLost
        /// The host shares no protocol version with this client (a feature refused for
        /// its version is `.remote(.versionMismatch)` instead, exit 1). Exit 255.
        case versionMismatch
        /// The host broke the protocol (garbage, unexpected frames). Exit 255.
        case protocolViolation
        /// The host refused a request (not found, busy, held elsewhere…). Exit 1.
        case remote(ErrorCode)
        /// Bad input on this side (unknown session, bad option). Exit 1.
        case usage
        /// Local state (TETHER_HOME) could not be read or written. Exit 1.
        case localState
    }

    public var kind: Kind
    /// The computer the error is about, as the user typed it; nil for local errors.
    public var host: String?
    public var message: String

    public init(_ kind: Kind, host: String? = nil, _ message: String) {
        self.kind = kind
        self.host = host
        self.message = message
    }

    public var description: String {
        if let host { return "\(host): \(message)" }
        return message
    }

    /// True for the failures ssh itself would exit 255 for.
    public var isConnectionLevel: Bool {
        switch kind {
        case .connection, .connectionLost, .versionMismatch, .protocolViolation: true
        case .remote, .usage, .localState: false
        }
    }

    /// True if an established connection was lost: what a resume can recover from (as
    /// opposed to the session having ended, closed or broken, or a refusal).
    public var isConnectionLost: Bool { kind == .connectionLost }

    /// The remote error code, if the host refused a request.
    public var remoteCode: ErrorCode? {
        if case .remote(let code) = kind { return code }
        return nil
    }

    func `as`(_ kind: Kind) -> TetherClientError {
        var copy = self
        copy.kind = kind
        return copy
    }

    func on(host: String) -> TetherClientError {
        var copy = self
        if copy.host == nil { copy.host = host }
        return copy
    }
}
