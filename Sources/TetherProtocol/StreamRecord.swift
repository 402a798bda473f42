/// A record of one of PowerShell's streams beyond output and error, as a command in a
/// session writes them (`tether-warning`, `tether-verbose`, `tether-information`,
/// `tether-progress`): record kinds 16–19 (protocol.md, "Records").
public enum StreamRecord: Sendable, Equatable {
    case warning(String)
    case verbose(String)
    case information(String)
    case progress(ProgressRecord)

    /// The stream's name, as `--json` and the docs spell it.
    public var streamName: String {
        switch self {
        case .warning: "warning"
        case .verbose: "verbose"
        case .information: "information"
        case .progress: "progress"
        }
    }

    public var kind: Record.Kind {
        switch self {
        case .warning: .warning
        case .verbose: .verbose
        case .information: .information
        case .progress: .progress
        }
    }

    /// The record body (see `Record.Kind`).
    public var body: [UInt8] {
        switch self {
        case .warning(let text), .verbose(let text), .information(let text):
            return Array(text.utf8)
        case .progress(let progress):
            var w = ByteWriter()
            w.write(progress.percent.map { UInt8(clamping: max(0, min(100, $0))) } ?? 255)
            w.write(progress.completed ? UInt8(1) : 0)
            let activity = Array(progress.activity.utf8)
            w.write(UInt32(activity.count))
            w.write(contentsOf: activity)
            w.write(contentsOf: Array(progress.status.utf8))
            return w.bytes
        }
    }

    /// The stream record a record of kind 16–19 carries; nil for other kinds.
    public init?(_ record: Record) throws(ProtocolError) {
        switch record.kind {
        case .warning: self = .warning(String(decoding: record.body, as: UTF8.self))
        case .verbose: self = .verbose(String(decoding: record.body, as: UTF8.self))
        case .information: self = .information(String(decoding: record.body, as: UTF8.self))
        case .progress:
            var r = ByteReader(record.body)
            let percent = try r.readU8()
            let flags = try r.readU8()
            let length = try r.readU32()
            let activity = try r.readBytes(Int(length))
            guard percent <= 100 || percent == 255 else { throw .badPayload("progress percent \(percent) is over 100") }
            self = .progress(ProgressRecord(activity: String(decoding: activity, as: UTF8.self),
                                            status: String(decoding: r.readRest(), as: UTF8.self),
                                            percent: percent == 255 ? nil : Int(percent),
                                            completed: flags & 1 != 0))
        default:
            return nil
        }
    }
}

extension Record {
    /// This record as a peer speaking `version` can take it: a stream record (protocol 3)
    /// for a protocol-2 client (tether 0.1) becomes a `stderr` record with the same seq —
    /// a warning `WARNING: text`, information its text, as lines, as a 0.2 client shows
    /// them; verbose and progress an empty body (that client has no --verbose and draws no
    /// bars). The seq stays, so the older client sees no gap and acknowledges it.
    public func downgraded(to version: UInt16) -> Record {
        guard kind.requiredProtocol > version else { return self }
        var text = ""
        switch try? StreamRecord(self) {
        case .warning(let message): text = "WARNING: " + message
        case .information(let message): text = message
        case .verbose, .progress, nil: break
        }
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        return Record(seq: seq, kind: .stderr, body: Array(text.utf8))
    }
}

/// One `tether-progress`: where an activity stands. Activities are told apart by name.
public struct ProgressRecord: Sendable, Equatable {
    public var activity: String
    public var status: String
    /// 0…100, or nil when the command did not say (`-1`).
    public var percent: Int?
    /// The activity is over (`tether-progress --completed`): its bar goes away.
    public var completed: Bool

    public init(activity: String, status: String = "", percent: Int?, completed: Bool = false) {
        self.activity = activity
        self.status = status
        self.percent = percent
        self.completed = completed
    }
}
