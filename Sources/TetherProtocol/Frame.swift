/// Frame types on the wire. One byte; an unknown value is a protocol error.
public enum FrameType: UInt8, Sendable, CaseIterable {
    /// First frame in each direction: magic, version, JSON `Hello`.
    case hello = 0x01
    /// A control request: u32 request id + JSON `Request`.
    case request = 0x02
    /// The answer to a request: u32 request id + JSON `Response`.
    case response = 0x03
    /// A fatal error for the channel (channel 0: the whole connection): JSON `ErrorBody`.
    case error = 0x04
    /// A notice that is not an answer and not output: JSON `Event`.
    case event = 0x05
    /// A sequenced output record from a runspace (hot path, binary): see `Record`.
    case record = 0x10
    /// Bytes for the running command's stdin (hot path, raw payload).
    case stdinData = 0x11
    /// End of the running command's stdin (empty payload).
    case stdinEOF = 0x12
    /// The client has every record up to and including this sequence number: u64.
    case ack = 0x13
}

/// One frame: `u32 length | u8 type | u32 channel | payload`, big-endian.
/// `length` counts everything after itself (so it is at least 5).
public struct Frame: Sendable, Equatable {
    public var type: FrameType
    public var channel: UInt32
    public var payload: [UInt8]

    /// Bytes of header after the length field.
    public static let headerLength = 5
    /// The largest payload either side sends or accepts. Output is cut into records of at
    /// most `Record.maxDataLength`, well below this.
    public static let maxPayloadLength = 1 << 20

    public init(type: FrameType, channel: UInt32, payload: [UInt8] = []) {
        self.type = type
        self.channel = channel
        self.payload = payload
    }

    /// The frame as bytes on the wire.
    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(4 + Frame.headerLength + payload.count)
        Frame.appendHeader(to: &out, type: type, channel: channel, payloadLength: payload.count)
        out.append(contentsOf: payload)
        return out
    }

    /// Appends just the 9-byte header; lets hot paths write payloads without a copy.
    public static func appendHeader(to out: inout [UInt8], type: FrameType, channel: UInt32, payloadLength: Int) {
        let length = UInt32(headerLength + payloadLength)
        out.append(UInt8(length >> 24)); out.append(UInt8((length >> 16) & 0xff))
        out.append(UInt8((length >> 8) & 0xff)); out.append(UInt8(length & 0xff))
        out.append(type.rawValue)
        out.append(UInt8(channel >> 24)); out.append(UInt8((channel >> 16) & 0xff))
        out.append(UInt8((channel >> 8) & 0xff)); out.append(UInt8(channel & 0xff))
    }
}

/// Incremental frame parser: feed it bytes as they arrive, take whole frames out.
///
/// A length over the maximum, under the header size, or an unknown type is reported as
/// soon as the 9-byte header is in — before any payload is buffered — so a hostile peer
/// cannot make us allocate.
///
/// The hot paths copy as little as possible: a reader can `read(2)` straight into the
/// buffer (`append(readingUpTo:)`), a relay takes frames as their wire bytes (`nextWire`,
/// one copy, nothing re-encoded), and a consumer can look at a payload in place
/// (`next(_:)`) and copy out only what it keeps.
public struct FrameDecoder {
    /// Bytes `start..<end` are received and not yet taken; the rest is scratch space.
    private var buffer: [UInt8] = []
    private var start = 0
    private var end = 0
    public let maxPayloadLength: Int

    /// A big frame being assembled in an array of its own, and how much of it is in.
    /// Output records are tens of KiB and arrive over many reads: gathered in the shared
    /// buffer they were copied three times per hop (in, slid to the front, out). Once a
    /// big frame's header is known it gets its exact-size array, later bytes go straight
    /// into it (a read(2) lands there directly), and the array is handed out as it is.
    private var assembling: [UInt8]?
    private var assembled = 0
    /// A finished assembly, taken before anything in `buffer` (which only holds later bytes).
    private var finished: [UInt8]?
    /// With `keepsRecordBodiesApart`: the frame and record headers of a big record whose
    /// body is being assembled (`assembling` then holds the body alone), and of a finished one.
    private var assemblingHead: [UInt8]?
    private var finishedHead: [UInt8]?
    /// The frame taken last was a big one: likely a stream, whose next frame is big too.
    private var tookBigFrame = false
    /// How many bytes the last `append(readingUpTo:)` offered `read`: a read that filled
    /// less found the descriptor drained.
    public private(set) var lastOffered = 0
    /// Frames at least this long are assembled on their own.
    static let assemblyThreshold = 16 * 1024
    /// A record frame's headers: length, type, channel, then the record's seq and kind.
    static let recordHeadLength = 4 + Frame.headerLength + Record.headerLength

    /// Set by a reader that keeps output records' bodies (the library's `HostConnection`):
    /// a big record's body is assembled in an array of its own, apart from its 22 bytes of
    /// headers, and `next(_:recordBody:)` hands that array over as the body — no copy. And
    /// after a big frame, a read into a buffer holding less than those headers takes only
    /// them (`append(readingUpTo:)`), so the next body is read straight into its own array
    /// too, instead of landing in the shared buffer and being copied from there.
    public var keepsRecordBodiesApart = false

    public init(maxPayloadLength: Int = Frame.maxPayloadLength) {
        self.maxPayloadLength = maxPayloadLength
    }

    /// Bytes received but not yet part of a returned frame.
    public var bufferedByteCount: Int {
        end - start + assembled + (finished?.count ?? 0) + (assemblingHead?.count ?? 0) + (finishedHead?.count ?? 0)
    }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        var rest = bytes[...]
        if assembling != nil {
            let taken = min(rest.count, assembling!.count - assembled)
            let head = rest.prefix(taken)
            assembling!.withUnsafeMutableBufferPointer { storage in
                _ = UnsafeMutableBufferPointer(rebasing: storage[assembled..<assembled + taken]).initialize(from: head)
            }
            assembled += taken
            rest = rest.dropFirst(taken)
            finishAssemblyIfComplete()
        }
        let count = rest.count
        guard count > 0 else { return }
        makeRoom(for: count)
        buffer.withUnsafeMutableBufferPointer { storage in
            _ = UnsafeMutableBufferPointer(rebasing: storage[end..<end + count]).initialize(from: rest)
        }
        end += count
    }

    /// Bytes lent by a transport (the library's `HostConnection`): copied in with
    /// memcpy. The generic `append` is not specialized across modules, so it copied
    /// them one element at a time through a slice iterator (~5 % of the client's CPU
    /// per command on the round trip).
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let offered = lastOffered
        defer { lastOffered = offered }
        var offset = 0
        while offset < bytes.count {
            let copied = append(readingUpTo: bytes.count - offset) { space in
                let count = min(space.count, bytes.count - offset)
                space.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
                return count
            }
            guard copied > 0 else { return }
            offset += copied
        }
    }

    /// Lets `read` fill up to `count` bytes of free space at the end of the buffer (a
    /// `read(2)` straight into it, no intermediate copy) — or, while a big frame is being
    /// assembled, the rest of that frame's own array. `read` returns how many bytes it
    /// wrote, or zero / a negative status, which is passed back unchanged.
    public mutating func append(readingUpTo count: Int, _ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        if assembling != nil {
            let room = assembling!.count - assembled
            lastOffered = room
            let filled = assembling!.withUnsafeMutableBytes { raw in
                read(UnsafeMutableRawBufferPointer(rebasing: raw[assembled..<assembled + room]))
            }
            if filled > 0 {
                assembled += min(filled, room)
                finishAssemblyIfComplete()
            }
            return filled
        }
        var count = count
        if keepsRecordBodiesApart && tookBigFrame && end - start < Self.recordHeadLength {
            // Most likely a stream's next big record: its headers first, then its body
            // straight into an array of its own.
            count = min(count, Self.recordHeadLength - (end - start))
        }
        makeRoom(for: count)
        lastOffered = count
        let filled = buffer.withUnsafeMutableBytes { raw in
            read(UnsafeMutableRawBufferPointer(rebasing: raw[end..<end + count]))
        }
        if filled > 0 { end += min(filled, count) }
        return filled
    }

    private mutating func finishAssemblyIfComplete() {
        guard let frame = assembling, assembled == frame.count else { return }
        finished = frame
        finishedHead = assemblingHead
        assemblingHead = nil
        assembling = nil
        assembled = 0
    }

    /// Ensures `count` free bytes after `end`: reuses the space of taken frames first.
    private mutating func makeRoom(for count: Int) {
        if start == end {
            start = 0
            end = 0
        }
        if buffer.count - end >= count { return }
        if start > 0 {
            // Slide the unfinished frame to the front (it is at most one frame).
            buffer.withUnsafeMutableBytes { raw in
                let base = raw.baseAddress!
                (base).copyMemory(from: base + start, byteCount: end - start)
            }
            end -= start
            start = 0
            if buffer.count - end >= count { return }
        }
        buffer.append(contentsOf: repeatElement(0, count: end + count - buffer.count))
    }

    /// The header of the next frame once all of it is buffered; validates as it goes.
    /// A big frame that is not all in yet moves to an array of its own (`assembling`).
    private mutating func wholeFrame() throws(ProtocolError) -> (type: FrameType, channel: UInt32, length: Int)? {
        let available = end - start
        guard available >= 4 else { return nil }
        var reader = ByteReader(buffer, from: start, to: end)
        let length = Int(try reader.readU32())
        if length < Frame.headerLength {
            throw .badLength(length)
        }
        if length - Frame.headerLength > maxPayloadLength {
            throw .frameTooLarge(length - Frame.headerLength, limit: maxPayloadLength)
        }
        guard available >= 4 + Frame.headerLength else { return nil }
        let rawType = try reader.readU8()
        guard let type = FrameType(rawValue: rawType) else { throw .unknownFrameType(rawType) }
        let channel = try reader.readU32()
        guard available >= 4 + length else {
            if 4 + length >= Self.assemblyThreshold {
                // Only this frame's first bytes are buffered (it is the last thing in). The
                // rest of the array is left unfilled (not zeroed: that would be one more
                // pass over every byte); `assembled` says how much is real, and nothing
                // reads past it before the frame is whole.
                var head = self.start
                var size = 4 + length
                if keepsRecordBodiesApart && type == .record {
                    // The body alone in the array; wait for the record's header first.
                    guard available >= Self.recordHeadLength else { return nil }
                    assemblingHead = Array(buffer[head..<head + Self.recordHeadLength])
                    head += Self.recordHeadLength
                    size -= Self.recordHeadLength
                }
                let taken = self.end - head
                assembling = buffer.withUnsafeBytes { from in
                    [UInt8](unsafeUninitializedCapacity: size) { frame, count in
                        UnsafeMutableRawBufferPointer(frame).copyMemory(
                            from: UnsafeRawBufferPointer(rebasing: from[head..<head + taken]))
                        count = size
                    }
                }
                assembled = taken
                start = 0
                end = 0
            }
            return nil
        }
        return (type, channel, length)
    }

    /// The next whole frame, `nil` if more bytes are needed, or an error for a bad one.
    public mutating func next() throws(ProtocolError) -> Frame? {
        try next { type, channel, payload in Frame(type: type, channel: channel, payload: Array(payload)) }
    }

    /// Takes the next whole frame and lets `visit` read its payload in place (valid only
    /// during the call): decode what you need, copy what you keep. `nil` if more bytes
    /// are needed. `visit` must not touch this decoder.
    public mutating func next<R>(
        _ visit: (FrameType, UInt32, UnsafeRawBufferPointer) throws(ProtocolError) -> R
    ) throws(ProtocolError) -> R? {
        if let frame = takeFinished() {
            tookBigFrame = true
            let wire = WireFrame(validated: frame)
            return try frame.withUnsafeBytes { raw in
                Result { () throws(ProtocolError) -> R in
                    try visit(wire.type, wire.channel, UnsafeRawBufferPointer(rebasing: raw[(4 + Frame.headerLength)...]))
                }
            }.get()
        }
        guard assembling == nil, let (type, channel, length) = try wholeFrame() else { return nil }
        let payloadStart = start + 4 + Frame.headerLength
        let frameEnd = start + 4 + length
        start = frameEnd
        tookBigFrame = 4 + length >= Self.assemblyThreshold
        // (withUnsafeBytes rethrows untyped errors: carry the typed one out in a Result.)
        return try buffer.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> R in
                try visit(type, channel, UnsafeRawBufferPointer(rebasing: raw[payloadStart..<frameEnd]))
            }
        }.get()
    }

    /// The next whole frame exactly as it was on the wire (one copy, no re-encoding; none
    /// for a big frame, whose own array it is).
    public mutating func nextWire() throws(ProtocolError) -> WireFrame? {
        if let frame = takeFinished() {
            tookBigFrame = true
            return WireFrame(validated: frame)
        }
        guard assembling == nil, let (_, _, length) = try wholeFrame() else { return nil }
        let frameStart = start
        start += 4 + length
        return WireFrame(validated: Array(buffer[frameStart..<start]))
    }

    /// Like `next(_:)`, but a big record assembled apart (`keepsRecordBodiesApart`) goes to
    /// `recordBody` instead: its channel, its record header (seq and kind, in place) and
    /// its body — the array it was read into, handed over without a copy.
    public mutating func next<R>(
        _ visit: (FrameType, UInt32, UnsafeRawBufferPointer) throws(ProtocolError) -> R,
        recordBody: (_ channel: UInt32, _ recordHeader: UnsafeRawBufferPointer, _ body: [UInt8]) throws(ProtocolError) -> R
    ) throws(ProtocolError) -> R? {
        guard let body = finished, let head = finishedHead else { return try next(visit) }
        finished = nil
        finishedHead = nil
        tookBigFrame = true
        let channel = WireFrame(validated: head).channel
        return try head.withUnsafeBytes { raw in
            Result { () throws(ProtocolError) -> R in
                try recordBody(channel, UnsafeRawBufferPointer(rebasing: raw[(4 + Frame.headerLength)...]), body)
            }
        }.get()
    }

    /// The finished assembly as a whole frame (a record's headers put back in front of its
    /// body: a copy, only for a reader that asks for whole frames after all).
    private mutating func takeFinished() -> [UInt8]? {
        guard let frame = finished else { return nil }
        finished = nil
        guard let head = finishedHead else { return frame }
        finishedHead = nil
        return head + frame
    }

    /// True if bytes of an unfinished frame are buffered (at end of stream: truncated).
    public var hasPartialFrame: Bool { bufferedByteCount > 0 }
}

/// A frame kept as its wire bytes, header included, as `FrameDecoder.nextWire` returns
/// it: a relay forwards it with at most its channel field rewritten, and decodes the
/// payload only of the frames it has to understand.
public struct WireFrame: Sendable {
    /// `u32 length | u8 type | u32 channel | payload`.
    public private(set) var bytes: [UInt8]

    /// Bytes already checked by the decoder (length, type).
    init(validated bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Encodes `frame`.
    public init(_ frame: Frame) {
        bytes = frame.encoded()
    }

    public var type: FrameType { FrameType(rawValue: bytes[4])! }

    public var channel: UInt32 {
        get { UInt32(bytes[5]) << 24 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 8 | UInt32(bytes[8]) }
        set {
            bytes[5] = UInt8(newValue >> 24); bytes[6] = UInt8((newValue >> 16) & 0xff)
            bytes[7] = UInt8((newValue >> 8) & 0xff); bytes[8] = UInt8(newValue & 0xff)
        }
    }

    public var payloadCount: Int { bytes.count - 4 - Frame.headerLength }

    /// The payload in place (valid only during the call).
    public func withPayload<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(E) -> R in
                try body(UnsafeRawBufferPointer(rebasing: raw[(4 + Frame.headerLength)...]))
            }
        }.get()
    }

    /// As a decoded `Frame` (copies the payload).
    public var frame: Frame {
        Frame(type: type, channel: channel, payload: Array(bytes[(4 + Frame.headerLength)...]))
    }
}

/// Everything that can be wrong with bytes from a peer. Each has a clear message and an
/// `ErrorCode` to send back before closing.
public enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(String)
    case badLength(Int)
    case frameTooLarge(Int, limit: Int)
    case unknownFrameType(UInt8)
    case badMagic
    case versionMismatch(peer: ProtocolRange, ours: ProtocolRange)
    case badPayload(String)
    case unexpected(String)
    case truncatedAtEOF(Int)

    public var description: String {
        switch self {
        case .truncated(let what): "truncated payload: expected \(what)"
        case .badLength(let n): "bad frame length \(n) (minimum is \(Frame.headerLength))"
        case .frameTooLarge(let n, let limit): "frame payload of \(n) bytes exceeds the limit of \(limit) bytes"
        case .unknownFrameType(let t): "unknown frame type 0x\(String(t, radix: 16))"
        case .badMagic: "not a Tether peer (bad hello magic)"
        case .versionMismatch(let peer, let ours): versionMismatchMessage(peer: peer, ours: ours)
        case .badPayload(let why): "malformed payload: \(why)"
        case .unexpected(let why): "unexpected frame: \(why)"
        case .truncatedAtEOF(let n): "stream ended inside a frame (\(n) bytes of an incomplete frame)"
        }
    }

    public var code: ErrorCode {
        switch self {
        case .truncated, .badPayload: .badPayload
        case .badLength, .truncatedAtEOF: .badFrame
        case .frameTooLarge: .frameTooLarge
        case .unknownFrameType: .unknownFrameType
        case .badMagic, .unexpected: .badFrame
        case .versionMismatch: .versionMismatch
        }
    }
}

/// "protocol version mismatch: peer speaks 4–5, this side speaks 2–3 (tether 0.2); …":
/// both ranges, and which side to upgrade.
private func versionMismatchMessage(peer: ProtocolRange, ours: ProtocolRange) -> String {
    let advice = peer.newest < ours.oldest
        ? "the peer needs tether \(tetherRelease(introducingProtocol: ours.oldest)) or later"
        : "this side needs a newer release (\(protocolDescription(peer.oldest)))"
    return "protocol version mismatch: peer speaks \(peer), this side speaks \(ours) (tether \(tetherReleaseVersion)); \(advice)"
}
