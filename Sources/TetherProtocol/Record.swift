/// A sequenced output record: what a runspace journals and replays.
///
/// Wire payload of a `.record` frame: `u64 seq | u8 kind | body`. Sequence numbers start
/// at 1 per session and grow by one per record, so a gap or a repeat is detectable.
public struct Record: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// body: raw bytes the command wrote to stdout.
        case stdout = 1
        /// body: raw bytes the command wrote to stderr.
        case stderr = 2
        /// body: u64 command id. The command's output follows.
        case commandStarted = 3
        /// body: u64 command id, i32 exit status (128+N when killed by signal N).
        case commandEnded = 4
        /// body: u64 bytes dropped (`drop` buffering), u64 records dropped.
        case dropped = 5
        /// body: i32 interpreter exit code, then UTF-8 reason. The session is over.
        case sessionClosed = 6
        /// body: UTF-8 reason. The interpreter died abnormally; the session is Broken.
        case sessionBroken = 7
        /// Jobs (seq: the job's last seq, not a new one): body u8 `JobState` code, i32 exit
        /// status. The followed job ended and everything it wrote has been sent before.
        case jobEnded = 12
        /// Jobs (seq as `jobEnded`): empty body. A non-following `jobReceive` has sent
        /// everything its job had recorded when it was asked.
        case jobCaughtUp = 13
        /// PowerShell's other streams (`StreamRecord`; kinds 16–23 are theirs, 20–23
        /// unused). Journaled, replayed and acknowledged like stdout and stderr.
        /// body: UTF-8 text of a `tether-warning`.
        case warning = 16
        /// body: UTF-8 text of a `tether-verbose`.
        case verbose = 17
        /// body: UTF-8 text of a `tether-information`.
        case information = 18
        /// body: u8 percent (0…100, 255 unknown), u8 flags (1 completed), u32 n, n bytes
        /// activity, then the status (UTF-8, the rest).
        case progress = 19

        /// What a command wrote (stdout, stderr, or one of the other streams): the records
        /// `drop` buffering may discard and a `dropped` record may stand for.
        public var isOutput: Bool {
            switch self {
            case .stdout, .stderr, .warning, .verbose, .information, .progress: true
            case .commandStarted, .commandEnded, .dropped, .sessionClosed, .sessionBroken, .jobEnded, .jobCaughtUp: false
            }
        }
    }

    public var seq: UInt64
    public var kind: Kind
    public var body: [UInt8]

    /// Output bytes per record at most; keeps frames small and replay granular.
    public static let maxDataLength = 256 * 1024

    public init(seq: UInt64, kind: Kind, body: [UInt8]) {
        self.seq = seq
        self.kind = kind
        self.body = body
    }

    /// Header bytes before the body in a record payload.
    public static let headerLength = 9

    public func payload() -> [UInt8] {
        var w = ByteWriter(capacity: Record.headerLength + body.count)
        w.write(seq)
        w.write(kind.rawValue)
        w.write(contentsOf: body)
        return w.bytes
    }

    /// A whole `.record` frame, header included, built with one allocation.
    public func frameBytes(channel: UInt32) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(4 + Frame.headerLength + Record.headerLength + body.count)
        Frame.appendHeader(to: &out, type: .record, channel: channel,
                           payloadLength: Record.headerLength + body.count)
        var w = ByteWriter(capacity: Record.headerLength)
        w.write(seq)
        w.write(kind.rawValue)
        out.append(contentsOf: w.bytes)
        out.append(contentsOf: body)
        return out
    }

    /// The frame header and record header that precede the body on the wire: with the
    /// body sent after it (writev), the same bytes as `frameBytes` without copying the body.
    public func frameHead(channel: UInt32) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(4 + Frame.headerLength + Record.headerLength)
        Frame.appendHeader(to: &out, type: .record, channel: channel,
                           payloadLength: Record.headerLength + body.count)
        out.append(contentsOf: Record.header(seq: seq, kind: kind))
        return out
    }

    public static func decode(_ payload: [UInt8]) throws(ProtocolError) -> Record {
        var r = ByteReader(payload)
        let seq = try r.readU64()
        let rawKind = try r.readU8()
        guard let kind = Kind(rawValue: rawKind) else {
            throw .badPayload("unknown record kind \(rawKind)")
        }
        return Record(seq: seq, kind: kind, body: Array(r.readRest()))
    }

    /// The same, reading the payload in place (`FrameDecoder.next(_:)`): only the body is
    /// copied, once.
    public static func decode(_ payload: UnsafeRawBufferPointer) throws(ProtocolError) -> Record {
        guard payload.count >= 8 else { throw .truncated("u64") }
        guard payload.count >= headerLength else { throw .truncated("u8") }
        var seq: UInt64 = 0
        for i in 0..<8 { seq = seq << 8 | UInt64(payload[i]) }
        let rawKind = payload[8]
        guard let kind = Kind(rawValue: rawKind) else {
            throw .badPayload("unknown record kind \(rawKind)")
        }
        return Record(seq: seq, kind: kind, body: Array(payload[headerLength...]))
    }

    /// A record whose body arrived in an array of its own (`FrameDecoder.next(_:recordBody:)`):
    /// the header read in place, the body kept as it is — no copy.
    public static func decode(header: UnsafeRawBufferPointer, body: [UInt8]) throws(ProtocolError) -> Record {
        guard header.count >= headerLength else { throw .truncated(header.count < 8 ? "u64" : "u8") }
        var seq: UInt64 = 0
        for i in 0..<8 { seq = seq << 8 | UInt64(header[i]) }
        guard let kind = Kind(rawValue: header[8]) else {
            throw .badPayload("unknown record kind \(header[8])")
        }
        return Record(seq: seq, kind: kind, body: body)
    }

    /// The record header (seq, kind) that precedes the body in a record payload.
    public static func header(seq: UInt64, kind: Kind) -> [UInt8] {
        var w = ByteWriter(capacity: headerLength)
        w.write(seq)
        w.write(kind.rawValue)
        return w.bytes
    }

    // MARK: Typed bodies

    public static func commandStarted(seq: UInt64, commandID: UInt64) -> Record {
        var w = ByteWriter(); w.write(commandID)
        return Record(seq: seq, kind: .commandStarted, body: w.bytes)
    }

    public static func commandEnded(seq: UInt64, commandID: UInt64, exitStatus: Int32) -> Record {
        var w = ByteWriter(); w.write(commandID); w.write(exitStatus)
        return Record(seq: seq, kind: .commandEnded, body: w.bytes)
    }

    public static func dropped(seq: UInt64, bytes: UInt64, records: UInt64) -> Record {
        var w = ByteWriter(); w.write(bytes); w.write(records)
        return Record(seq: seq, kind: .dropped, body: w.bytes)
    }

    public static func sessionClosed(seq: UInt64, exitCode: Int32, reason: String) -> Record {
        var w = ByteWriter(); w.write(exitCode); w.write(contentsOf: Array(reason.utf8))
        return Record(seq: seq, kind: .sessionClosed, body: w.bytes)
    }

    public static func sessionBroken(seq: UInt64, reason: String) -> Record {
        Record(seq: seq, kind: .sessionBroken, body: Array(reason.utf8))
    }

    public static func jobEnded(seq: UInt64, state: JobState, exitStatus: Int32) -> Record {
        var w = ByteWriter(); w.write(state.code); w.write(exitStatus)
        return Record(seq: seq, kind: .jobEnded, body: w.bytes)
    }

    /// (state, exit status) of a `jobEnded` record.
    public func jobEndInfo() throws(ProtocolError) -> (state: JobState, exitStatus: Int32) {
        var r = ByteReader(body)
        let code = try r.readU8()
        guard let state = JobState(code: code) else { throw .badPayload("unknown job state code \(code)") }
        return (state, try r.readI32())
    }

    /// The command id of a `commandStarted` or `commandEnded` record.
    public func commandID() throws(ProtocolError) -> UInt64 {
        var r = ByteReader(body)
        return try r.readU64()
    }

    /// The exit status of a `commandEnded` record.
    public func exitStatus() throws(ProtocolError) -> Int32 {
        var r = ByteReader(body)
        _ = try r.readU64()
        return try r.readI32()
    }

    /// (bytes, records) of a `dropped` record.
    public func droppedCounts() throws(ProtocolError) -> (bytes: UInt64, records: UInt64) {
        var r = ByteReader(body)
        return (try r.readU64(), try r.readU64())
    }

    /// (exit code, reason) of a `sessionClosed` record.
    public func closedInfo() throws(ProtocolError) -> (exitCode: Int32, reason: String) {
        var r = ByteReader(body)
        let code = try r.readI32()
        return (code, String(decoding: r.readRest(), as: UTF8.self))
    }
}
