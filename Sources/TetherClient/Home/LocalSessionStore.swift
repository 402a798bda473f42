#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
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
    /// How the session was reached (`-F -p -l -i -o -J …` given at `new`/`connect`), as
    /// JSON: later verbs connect the same way unless their command line says otherwise.
    /// Nil when it was reached with the plain ssh config.
    public var connection: String?

    public init(id: Int, instanceID: String, name: String, computerName: String, configuration: String,
                connection: String? = nil) {
        self.id = id
        self.instanceID = instanceID
        self.name = name
        self.computerName = computerName
        self.configuration = configuration
        self.connection = connection
    }

    /// The remembered connection options, decoded.
    public var connectionOptions: ConnectionOptions? {
        guard let connection else { return nil }
        return try? JSONDecoder().decode(ConnectionOptions.self, from: Data(connection.utf8))
    }

    /// The JSON `connection` holds for `options` (nil when there is nothing to remember).
    public static func rememberedConnection(_ options: ConnectionOptions) -> String? {
        let remembered = options.remembered
        guard !remembered.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(remembered) else { return nil }
        return String(decoding: data, as: UTF8.self)
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
    /// The file is rewritten only if something changed: `tether get --computer` on a host
    /// whose sessions this client already lists writes nothing.
    @discardableResult
    public func record(_ sessions: [(instanceID: String, name: String, computerName: String, configuration: String)],
                       connection: String? = nil) throws -> [LocalSession] {
        try modify { file, changed in
            var indexByInstanceID = [String: Int](minimumCapacity: file.sessions.count)
            for (index, session) in file.sessions.enumerated() where indexByInstanceID[session.instanceID] == nil {
                indexByInstanceID[session.instanceID] = index
            }
            return sessions.map { new in
                if let index = indexByInstanceID[new.instanceID] {
                    if file.sessions[index].name != new.name {
                        file.sessions[index].name = new.name
                        changed = true
                    }
                    if let connection, file.sessions[index].connection != connection {
                        file.sessions[index].connection = connection
                        changed = true
                    }
                    return file.sessions[index]
                }
                let entry = LocalSession(id: file.nextID, instanceID: new.instanceID, name: new.name,
                                         computerName: new.computerName, configuration: new.configuration,
                                         connection: connection)
                file.nextID += 1
                indexByInstanceID[new.instanceID] = file.sessions.count
                file.sessions.append(entry)
                changed = true
                return entry
            }
        }
    }

    /// Forgets these sessions (their Ids are not reused).
    public func forget(instanceIDs: Set<String>) throws {
        guard !instanceIDs.isEmpty else { return }
        try modify { file, changed in
            let before = file.sessions.count
            file.sessions.removeAll { instanceIDs.contains($0.instanceID) }
            changed = file.sessions.count != before
        }
    }

    /// Read, change, and write back if `body` says it changed something (`changed`).
    private func modify<T>(_ body: (inout File, inout Bool) throws -> T) throws -> T {
        try home.prepare()
        return try LockedFile.withLock(home.lockFile) {
            var file = try load()
            var changed = false
            let result = try body(&file, &changed)
            guard changed else { return result }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try LockedFile.writeAtomically(try encoder.encode(file), to: home.sessionsFile)
            return result
        }
    }

    private func load() throws -> File {
        guard let data = try LockedFile.read(home.sessionsFile), !data.isEmpty else { return File() }
        do {
            return try File.read(Array(data))
        } catch {
            let why: String = if case .badPayload(let why) = error { why } else { "\(error)" }
            throw TetherClientError(.localState,
                "\(home.sessionsFile) is damaged (\(why)); move it away to start a new session list")
        }
    }
}
