import TetherProtocol

/// PowerShell's session state, relative to the asking client.
public enum SessionState: String, Sendable, Codable, CaseIterable {
    /// This client holds the session.
    case opened = "Opened"
    /// Nobody, or another client, holds it.
    case disconnected = "Disconnected"
    /// Its interpreter exited or it was removed.
    case closed = "Closed"
    /// Its runspace or interpreter died.
    case broken = "Broken"
    /// The host could not be asked (shown by `tether get` for unreachable hosts).
    case unknown = "Unknown"
}

/// PowerShell's availability, relative to the asking client.
public enum SessionAvailability: String, Sendable, Codable {
    /// Held here and idle: commands run at once.
    case available = "Available"
    /// Held here and running a command, or held by another client.
    case busy = "Busy"
    /// Free to connect, or unusable (Closed/Broken/Unknown).
    case none = "None"
}

/// A host's view of a session, plus what it means to this client.
public struct SessionSummary: Sendable, Equatable {
    public var info: SessionInfo
    /// The computer as the user named it.
    public var computerName: String
    public var state: SessionState
    public var availability: SessionAvailability
    /// The other client holding it, if any (its machine name and since when).
    public var heldElsewhere: Holder?

    public init(info: SessionInfo, computerName: String, clientID: String) {
        self.info = info
        self.computerName = computerName
        (state, availability) = Self.relativeState(of: info, clientID: clientID)
        if let holder = info.holder, holder.clientID != clientID {
            heldElsewhere = holder
        }
    }

    /// PowerShell's rules: a session is Opened only for the client holding it; for
    /// everyone else it is Disconnected, and Busy while someone holds it.
    public static func relativeState(of info: SessionInfo, clientID: String) -> (SessionState, SessionAvailability) {
        switch info.state {
        case .closed: return (.closed, .none)
        case .broken: return (.broken, .none)
        case .running:
            guard let holder = info.holder else { return (.disconnected, .none) }
            if holder.clientID == clientID { return (.opened, info.busy ? .busy : .available) }
            return (.disconnected, .busy)
        }
    }

    public var instanceID: String { info.instanceID }
    public var name: String { info.name }
}
