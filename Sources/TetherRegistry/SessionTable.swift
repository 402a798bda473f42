import TetherProtocol

/// What `sessions.json` holds: everything needed to re-adopt runspaces after a registry
/// crash and to report sessions that are gone.
struct SessionTable: Codable, Equatable {
    /// Bumped on an incompatible change of this file's layout.
    var formatVersion = 1
    /// Next N for a default "Session<N>" name; never reused, like PowerShell's Ids.
    var nextSessionNumber = 1
    var sessions: [StoredSession] = []
    /// Sessions removed for idleness, so a client asking about one later learns why.
    var tombstones: [Tombstone] = []
}

/// One row of the table.
struct StoredSession: Codable, Equatable {
    var info: SessionInfo
    /// Attachments when last saved: a session that was in use when the registry died is
    /// given a fresh idle period on adoption instead of being timed out early.
    var attachments: Int
}

/// A session the registry removed on its own (idle timeout); kept for `keepSeconds`.
struct Tombstone: Codable, Equatable {
    static let keepSeconds: Double = 24 * 3600

    var instanceID: String
    var name: String
    var configuration: String
    var createdAt: Double
    var removedAt: Double
    var reason: String

    /// How `list` reports it: a closed session with the reason.
    var asSessionInfo: SessionInfo {
        SessionInfo(instanceID: instanceID, name: name, configuration: configuration, state: .closed,
                    holder: nil, busy: false, createdAt: createdAt, lastUsedAt: removedAt,
                    idleTimeout: 0, outputBuffering: .block, bufferLimit: 0, reason: reason)
    }
}
