import Foundation
import TetherIO

/// One session this client knows, with the local Id the user types (`--id 3`).
public struct LocalSession: Codable, Sendable, Equatable {
    /// Small local number: 1, 2, 3…, never reused, stable across invocations.
    public var id: Int
    public var instanceID: String
    public var name: String
    /// The computer as the user typed it (an ssh config alias, a host name…).
    public var computerName: String
    public var configuration: String

    public init(id: Int, instanceID: String, name: String, computerName: String, configuration: String) {
        self.id = id
        self.instanceID = instanceID
        self.name = name
        self.computerName = computerName
        self.configuration = configuration
    }
}

/// `client-sessions.json`, safe for concurrent `tether` processes (flock + atomic rename).
public struct LocalSessionStore: Sendable {
    let home: ClientHome

    struct File: Codable {
        var nextID: Int = 1
        var sessions: [LocalSession] = []
    }

    /// Every session in the list, by Id.
    public func all() throws -> [LocalSession] {
        try home.prepare()
        return try LockedFile.withLock(home.lockFile) { try load().sessions }
    }

    /// Adds sessions not yet listed (by instance id) with fresh Ids; updates names of
    /// listed ones. Returns the entries for `sessions`, in order.
    @discardableResult
    public func record(_ sessions: [(instanceID: String, name: String, computerName: String, configuration: String)]) throws -> [LocalSession] {
        try modify { file in
            sessions.map { new in
                if let index = file.sessions.firstIndex(where: { $0.instanceID == new.instanceID }) {
                    file.sessions[index].name = new.name
                    return file.sessions[index]
                }
                let entry = LocalSession(id: file.nextID, instanceID: new.instanceID, name: new.name,
                                         computerName: new.computerName, configuration: new.configuration)
                file.nextID += 1
                file.sessions.append(entry)
                return entry
            }
        }
    }

    /// Forgets these sessions (their Ids are not reused).
    public func forget(instanceIDs: Set<String>) throws {
        guard !instanceIDs.isEmpty else { return }
        try modify { file in
            file.sessions.removeAll { instanceIDs.contains($0.instanceID) }
        }
    }

    private func modify<T>(_ body: (inout File) throws -> T) throws -> T {
        try home.prepare()
        return try LockedFile.withLock(home.lockFile) {
            var file = try load()
            let result = try body(&file)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try LockedFile.writeAtomically(try encoder.encode(file), to: home.sessionsFile)
            return result
        }
    }

    private func load() throws -> File {
        guard let data = try LockedFile.read(home.sessionsFile), !data.isEmpty else { return File() }
        do {
            return try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw TetherClientError(.localState,
                "\(home.sessionsFile) is damaged (\(error)); move it away to start a new session list")
        }
    }
}
