import TetherClient
import TetherProtocol

/// The error objects of `--json` output (docs/json.md): every failure a command reports on
/// stderr is also an element of its JSON array, so a script sees which computer failed and
/// why without parsing stderr — and an empty array means "nothing matched", never "a host
/// failed".
enum FailureJSON {
    /// `{"computerName", "error": {…}, "id", "instanceId", "name"}` for each failure, as
    /// further elements of the array `out` is writing.
    static func append(_ entries: [Failures.Entry], to out: inout PrettyJSON) {
        for entry in entries {
            out.element()
            out.beginObject()
            out.key("computerName"); out.optionalString(entry.host)
            out.key("error"); error(entry.error, exitCode: entry.exitCode, to: &out)
            out.key("id"); if let id = entry.session?.id { out.integer(id) } else { out.null() }
            out.key("instanceId"); out.optionalString(entry.session?.instanceID)
            out.key("name"); out.optionalString(entry.session?.name)
            out.endObject()
        }
    }

    /// A JSON array of just these failures (a command that failed as a whole).
    static func array(_ entries: [Failures.Entry]) -> String {
        var out = PrettyJSON()
        out.beginArray()
        append(entries, to: &out)
        out.endArray()
        return String(decoding: out.bytes, as: UTF8.self) + "\n"
    }

    /// The `error` value: `{"code", "exitStatus", "kind", "message"}`.
    static func error(_ error: any Error, exitCode: Int32, to out: inout PrettyJSON) {
        out.beginObject()
        let clientError = error as? TetherClientError
        out.key("code"); out.optionalString(clientError?.remoteCode?.rawValue)
        out.key("exitStatus"); out.integer(Int(exitCode))
        out.key("kind"); out.string(clientError.map { kindName($0.kind) } ?? "other")
        out.key("message"); out.string(clientError?.message ?? "\(error)")
        out.endObject()
    }

    static func kindName(_ kind: TetherClientError.Kind) -> String {
        switch kind {
        case .connection: "connection"
        case .connectionLost: "connectionLost"
        case .versionMismatch: "versionMismatch"
        case .protocolViolation: "protocolViolation"
        case .remote: "remote"
        case .usage: "usage"
        case .localState: "localState"
        }
    }
}
