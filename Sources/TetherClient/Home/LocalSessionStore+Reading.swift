import TetherProtocol

extension LocalSessionStore.File {
    /// Reads `client-sessions.json` without Foundation's JSONDecoder, which takes ~5 ms over
    /// a list of a thousand sessions — paid by every `tether` command that looks a session
    /// up. Same rules as the Codable conformance it stands in for: any key order, unknown
    /// keys ignored, `nextID` and every session field required.
    static func read(_ bytes: [UInt8]) throws(ProtocolError) -> Self {
        var reader = JSONReader(bytes, what: "session list")
        var nextID: Int?
        var sessions: [LocalSession]?
        try reader.beginObject()
        while let key = try reader.nextKey() {
            switch key {
            case "nextID": nextID = try reader.readInteger()
            case "sessions":
                var list: [LocalSession] = []
                try reader.beginArray()
                while try reader.nextElement() { list.append(try LocalSession.read(from: &reader)) }
                sessions = list
            default: try reader.skipValue()
            }
        }
        try reader.expectEnd()
        guard let nextID, let sessions else { throw reader.failure("no \"nextID\" or no \"sessions\"") }
        return Self(nextID: nextID, sessions: sessions)
    }
}

extension LocalSession {
    static func read(from reader: inout JSONReader) throws(ProtocolError) -> LocalSession {
        var id: Int?, instanceID: String?, name: String?, computerName: String?, configuration: String?
        var connection: String?
        try reader.beginObject()
        while let key = try reader.nextKey() {
            switch key {
            case "id": id = try reader.readInteger()
            case "instanceID": instanceID = try reader.readString()
            case "name": name = try reader.readString()
            case "computerName": computerName = try reader.readString()
            case "configuration": configuration = try reader.readString()
            case "connection": connection = try reader.readString()
            default: try reader.skipValue()
            }
        }
        guard let id, let instanceID, let name, let computerName, let configuration else {
            throw reader.failure("a session without id, instanceID, name, computerName or configuration")
        }
        return LocalSession(id: id, instanceID: instanceID, name: name, computerName: computerName,
                            configuration: configuration, connection: connection)
    }
}
