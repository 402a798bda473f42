/// Bytes waiting for the channel, handed to `libssh2_channel_write_ex` one packet at a
/// time. Two rules shape it:
/// - a packet in flight (the call returned EAGAIN) is offered again unchanged until it
///   completes: libssh2 1.10 has committed it and anything else is LIBSSH2_ERROR_BAD_USE;
/// - libssh2 sends at most 32,700 bytes per call, so small writes are coalesced (one copy)
///   into a packet of up to that size, and big ones are sent in place (no copy).
struct OutboundQueue {
    static let maxPacketBytes = 32_700

    private var chunks: [[UInt8]] = []
    private var head = 0
    private var headOffset = 0
    private var staged: [UInt8]?
    private var stagedOffset = 0
    /// Length of the packet offered last and not yet accepted; nil when none.
    private var inFlight: Int?

    private(set) var byteCount = 0
    var isEmpty: Bool { byteCount == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        chunks.append(bytes)
        byteCount += bytes.count
    }

    /// Offers the next packet to `write`, which returns bytes accepted (> 0) or a libssh2
    /// status (≤ 0). Returns what `write` returned.
    mutating func writeNext(_ write: (UnsafeRawBufferPointer) -> Int) -> Int {
        precondition(!isEmpty, "writeNext on an empty queue")
        let length = inFlight ?? preparePacket()
        inFlight = length
        let result: Int
        if let staged {
            result = staged.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[stagedOffset..<stagedOffset + length])) }
        } else {
            result = chunks[head].withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[headOffset..<headOffset + length])) }
        }
        if result > 0 {
            consume(min(result, length))
            inFlight = nil
        }
        return result
    }

    /// Drops everything (the connection is gone).
    mutating func removeAll() {
        self = OutboundQueue()
    }

    private mutating func preparePacket() -> Int {
        if let staged { return min(Self.maxPacketBytes, staged.count - stagedOffset) }
        let headRemaining = chunks[head].count - headOffset
        let next = head + 1
        guard headRemaining < Self.maxPacketBytes, next < chunks.count,
              headRemaining + chunks[next].count <= Self.maxPacketBytes
        else { return min(Self.maxPacketBytes, headRemaining) }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(Self.maxPacketBytes)
        buffer.append(contentsOf: chunks[head][headOffset...])
        popHead()
        while head < chunks.count && buffer.count + chunks[head].count <= Self.maxPacketBytes {
            buffer.append(contentsOf: chunks[head])
            popHead()
        }
        staged = buffer
        stagedOffset = 0
        return buffer.count
    }

    private mutating func consume(_ count: Int) {
        byteCount -= count
        if let buffer = staged {
            stagedOffset += count
            if stagedOffset == buffer.count { staged = nil; stagedOffset = 0 }
        } else {
            headOffset += count
            if headOffset == chunks[head].count { popHead() }
        }
    }

    private mutating func popHead() {
        chunks[head] = []
        head += 1
        headOffset = 0
        // Compact now and then so the array doesn't grow without bound.
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
    }
}
