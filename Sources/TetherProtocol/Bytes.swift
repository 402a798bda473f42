/// The one place untrusted bytes are parsed: every read is bounds-checked and a short
/// buffer is an error, never a crash (the OpenSSH `sshbuf` discipline).
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = end ?? bytes.count
    }

    public var remaining: Int { end - offset }

    /// The next byte, not consumed.
    public func peekU8() throws(ProtocolError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated("u8") }
        return bytes[offset]
    }

    public mutating func readU8() throws(ProtocolError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated("u8") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readU16() throws(ProtocolError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated("u16") }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func readU32() throws(ProtocolError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated("u32") }
        defer { offset += 4 }
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[offset + i]) }
        return value
    }

    public mutating func readU64() throws(ProtocolError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated("u64") }
        defer { offset += 8 }
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        return value
    }

    public mutating func readI32() throws(ProtocolError) -> Int32 {
        Int32(bitPattern: try readU32())
    }

    public mutating func readBytes(_ count: Int) throws(ProtocolError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw .truncated("\(count) bytes") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    public mutating func readRest() -> ArraySlice<UInt8> {
        defer { offset = end }
        return bytes[offset..<end]
    }
}

/// Big-endian writer for frame payloads.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xff))
    }

    public mutating func write(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((value >> UInt32(shift)) & 0xff)) }
    }

    public mutating func write(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xff)) }
    }

    public mutating func write(_ value: Int32) { write(UInt32(bitPattern: value)) }

    public mutating func write<C: Collection>(contentsOf data: C) where C.Element == UInt8 {
        bytes.append(contentsOf: data)
    }
}
