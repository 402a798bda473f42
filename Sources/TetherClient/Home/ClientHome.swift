#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherIO

/// This client's state directory (`TETHER_HOME`, default ~/.local/state/tether, 0700):
///
/// * `client.json` — the stable client id (a UUID made once), by which hosts know that a
///   session is held "here" across separate `tether` processes;
/// * `client-sessions.json` — this client's sessions with their local Ids.
///
/// The sessions file is not called `sessions.json` because the default directory is the
/// same as a host's state directory, and a host's session table is `sessions.json`:
/// a user who runs `tether` against localhost must not have the two overwrite each other.
public struct ClientHome: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// `$TETHER_HOME`, else `~/.local/state/tether`.
    public static var `default`: ClientHome {
        if let home = Environment.get("TETHER_HOME") { return ClientHome(directory: home) }
        let userHome = Environment.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()
        return ClientHome(directory: "\(userHome)/.local/state/tether")
    }

    var clientFile: String { directory + "/client.json" }
    var sessionsFile: String { directory + "/client-sessions.json" }
    var lockFile: String { directory + "/client.lock" }

    /// Creates the directory (0700, refused if others can read it).
    public func prepare() throws {
        do {
            try SecureDirectory.prepare(directory)
        } catch {
            throw TetherClientError(.localState, "TETHER_HOME \(directory): \(error)")
        }
    }

    private struct ClientFile: Codable {
        var clientID: String
    }

    /// The client id, created on first use.
    public func clientID() throws -> String {
        try prepare()
        return try LockedFile.withLock(lockFile) {
            if let data = try LockedFile.read(clientFile), !data.isEmpty {
                guard let file = try? JSONDecoder().decode(ClientFile.self, from: data),
                      UUID(uuidString: file.clientID) != nil else {
                    throw TetherClientError(.localState,
                        "\(clientFile) is damaged; delete it to get a new client id (sessions held by the old id then show as Disconnected)")
                }
                return file.clientID
            }
            let file = ClientFile(clientID: UUID().uuidString.lowercased())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try LockedFile.writeAtomically(try encoder.encode(file), to: clientFile)
            return file.clientID
        }
    }

    /// This client's list of sessions.
    public var sessions: LocalSessionStore { LocalSessionStore(home: self) }
}
