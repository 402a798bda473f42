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
public struct FrameDecoder {
    private var buffer: [UInt8] = []
    private var start = 0
    public let maxPayloadLength: Int

    public init(maxPayloadLength: Int = Frame.maxPayloadLength) {
        self.maxPayloadLength = maxPayloadLength
    }

    /// Bytes received but not yet part of a returned frame.
    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 16 && start * 2 > buffer.count {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, `nil` if more bytes are needed, or an error for a bad one.
    public mutating func next() throws(ProtocolError) -> Frame? {
        let available = buffer.count - start
        guard available >= 4 else { return nil }
        var reader = ByteReader(buffer, from: start)
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
        guard available >= 4 + length else { return nil }
        let payloadStart = start + 4 + Frame.headerLength
        let payload = Array(buffer[payloadStart..<start + 4 + length])
        start += 4 + length
        return Frame(type: type, channel: channel, payload: payload)
    }

    /// True if bytes of an unfinished frame are buffered (at end of stream: truncated).
    public var hasPartialFrame: Bool { bufferedByteCount > 0 }
}

/// Everything that can be wrong with bytes from a peer. Each has a clear message and an
/// `ErrorCode` to send back before closing.
public enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(String)
    case badLength(Int)
    case frameTooLarge(Int, limit: Int)
    case unknownFrameType(UInt8)
    case badMagic
    case versionMismatch(peer: UInt16, ours: UInt16)
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
        case .versionMismatch(let peer, let ours): "protocol version mismatch: peer speaks \(peer), this side speaks \(ours)"
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
