/// The `sessions` response (the answer to `list`) written and read by hand. It is the one
/// control payload that grows with the host: a thousand sessions are ~380 KB of JSON, which
/// Foundation's JSONEncoder/JSONDecoder on Linux take ~10 ms each way over, the larger part
/// of `tether get --computer`. The wire format is unchanged — the same JSON that `WireJSON`
/// writes for `Response.sessions` (`{"sessions":{"_0":[SessionInfo…]}}`, keys sorted, nil
/// optionals left out) — so either side may use either coder; tests hold them together.
public enum SessionListCoding {
    /// The JSON of `Response.sessions(infos)`.
    public static func encode(_ infos: [SessionInfo]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + infos.count * 400)
        writer.beginObject()
        writer.key("sessions")
        writer.beginObject()
        writer.key("_0")
        writer.beginArray()
        for info in infos {
            writer.element()
            info.write(to: &writer)
        }
        writer.endArray()
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    /// The sessions of a `Response.sessions` JSON starting at `start`, or nil if the payload
    /// is some other response (its only key is not "sessions"): decode that the usual way.
    /// A `sessions` payload that is malformed throws.
    public static func decodeIfSessions(_ payload: [UInt8], from start: Int = 0) throws(ProtocolError) -> [SessionInfo]? {
        var reader = JSONReader(payload, from: start, what: "sessions reply")
        // Anything that doesn't open like a sessions reply is left to WireJSON (and its errors).
        guard (try? reader.beginObject()) != nil, (try? reader.nextKey()) == "sessions" else { return nil }
        var infos: [SessionInfo]?
        try reader.beginObject()
        while let key = try reader.nextKey() {
            guard key == "_0" else { try reader.skipValue(); continue }
            var list: [SessionInfo] = []
            try reader.beginArray()
            while try reader.nextElement() {
                list.append(try SessionInfo.read(from: &reader))
            }
            infos = list
        }
        guard let infos else { throw reader.failure("no \"_0\" list in \"sessions\"") }
        if try reader.nextKey() != nil { throw reader.failure("a response has exactly one key") }
        try reader.expectEnd()
        return infos
    }
}

extension SessionInfo {
    /// Keys in sorted order, as `WireJSON` writes them.
    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("bufferLimit"); writer.integer(bufferLimit)
        writer.key("busy"); writer.bool(busy)
        writer.key("configuration"); writer.string(configuration)
        writer.key("createdAt"); writer.double(createdAt)
        if let exitCode { writer.key("exitCode"); writer.integer(exitCode) }
        if let holder {
            writer.key("holder")
            writer.beginObject()
            writer.key("clientHost"); writer.string(holder.clientHost)
            writer.key("clientID"); writer.string(holder.clientID)
            writer.key("since"); writer.double(holder.since)
            writer.endObject()
        }
        writer.key("idleTimeout"); writer.double(idleTimeout)
        writer.key("instanceID"); writer.string(instanceID)
        writer.key("lastUsedAt"); writer.double(lastUsedAt)
        writer.key("name"); writer.string(name)
        writer.key("outputBuffering"); writer.string(outputBuffering.rawValue)
        if let protocolVersion { writer.key("protocolVersion"); writer.integer(protocolVersion) }
        if let reason { writer.key("reason"); writer.string(reason) }
        if let runspacePID { writer.key("runspacePID"); writer.integer(runspacePID) }
        writer.key("state"); writer.string(state.rawValue)
        writer.endObject()
    }

    /// One SessionInfo object, any key order, unknown keys skipped, `null` taken as absent
    /// for the optional ones — what JSONDecoder accepts for it.
    static func read(from reader: inout JSONReader) throws(ProtocolError) -> SessionInfo {
        var instanceID: String?, name: String?, configuration: String?
        var state: HostSessionState?, outputBuffering: OutputBuffering?
        var holder: Holder?, busy: Bool?, bufferLimit: Int?
        var createdAt: Double?, lastUsedAt: Double?, idleTimeout: Double?
        var reason: String?, exitCode: Int32?, runspacePID: Int32?, protocolVersion: UInt16?
        try reader.beginObject()
        while let key = try reader.nextKey() {
            switch key {
            case "instanceID": instanceID = try reader.readString()
            case "name": name = try reader.readString()
            case "configuration": configuration = try reader.readString()
            case "state":
                let raw = try reader.readString()
                guard let value = HostSessionState(rawValue: raw) else { throw reader.failure("unknown session state \"\(raw)\"") }
                state = value
            case "outputBuffering":
                let raw = try reader.readString()
                guard let value = OutputBuffering(rawValue: raw) else { throw reader.failure("unknown output buffering \"\(raw)\"") }
                outputBuffering = value
            case "holder": holder = try reader.readNull() ? nil : try Holder.read(from: &reader)
            case "busy": busy = try reader.readBool()
            case "bufferLimit": bufferLimit = try reader.readInteger()
            case "createdAt": createdAt = try reader.readDouble()
            case "lastUsedAt": lastUsedAt = try reader.readDouble()
            case "idleTimeout": idleTimeout = try reader.readDouble()
            case "reason": reason = try reader.readNull() ? nil : try reader.readString()
            case "exitCode": exitCode = try reader.readNull() ? nil : try reader.readInteger()
            case "runspacePID": runspacePID = try reader.readNull() ? nil : try reader.readInteger()
            case "protocolVersion": protocolVersion = try reader.readNull() ? nil : try reader.readInteger()
            default: try reader.skipValue()
            }
        }
        func required<T>(_ value: T?, _ key: String) throws(ProtocolError) -> T {
            guard let value else { throw reader.failure("session without \"\(key)\"") }
            return value
        }
        var info = SessionInfo(
            instanceID: try required(instanceID, "instanceID"), name: try required(name, "name"),
            configuration: try required(configuration, "configuration"), state: try required(state, "state"),
            holder: holder, busy: try required(busy, "busy"), createdAt: try required(createdAt, "createdAt"),
            lastUsedAt: try required(lastUsedAt, "lastUsedAt"), idleTimeout: try required(idleTimeout, "idleTimeout"),
            outputBuffering: try required(outputBuffering, "outputBuffering"),
            bufferLimit: try required(bufferLimit, "bufferLimit"),
            reason: reason, exitCode: exitCode, runspacePID: runspacePID)
        info.protocolVersion = protocolVersion
        return info
    }
}

extension Holder {
    static func read(from reader: inout JSONReader) throws(ProtocolError) -> Holder {
        var clientID: String?, clientHost: String?, since: Double?
        try reader.beginObject()
        while let key = try reader.nextKey() {
            switch key {
            case "clientID": clientID = try reader.readString()
            case "clientHost": clientHost = try reader.readString()
            case "since": since = try reader.readDouble()
            default: try reader.skipValue()
            }
        }
        guard let clientID, let clientHost, let since else {
            throw reader.failure("holder without clientID, clientHost or since")
        }
        return Holder(clientID: clientID, clientHost: clientHost, since: since)
    }
}
