import TetherProtocol

/// Watches the byte stream from the keeper for its last word about the link
/// (`KeeperLinkEnd`, a channel-0 `error` frame) without parsing anything else: it only
/// follows the 9-byte frame headers and lets every other byte through as is.
///
/// A channel-0 `error` frame is held back until it is complete; if it is the keeper's
/// it is taken off the stream, otherwise (the host's own fatal error) it goes through.
struct LinkEndScanner {
    enum Result: Equatable {
        /// Pass these bytes on.
        case bytes([UInt8])
        /// Pass these bytes on; then the stream is over for this reason.
        case ended([UInt8], KeeperLinkEnd)
    }

    private static let fullHeader = 4 + Frame.headerLength
    private var header: [UInt8] = []
    /// Payload bytes of the current frame not seen yet.
    private var payloadLeft = 0
    /// The current frame is a channel-0 error: its bytes (header included) are held.
    private var held: [UInt8]?

    mutating func feed(_ chunk: [UInt8]) -> Result {
        var out: [UInt8] = []
        out.reserveCapacity(chunk.count)
        let end = chunk.withUnsafeBytes { feed($0) { out.append(contentsOf: $0) } }
        return end.map { .ended(out, $0) } ?? .bytes(out)
    }

    /// The same without copying the stream: the bytes to pass on go to `pass` in place, as
    /// runs of `chunk` (only a header split across chunks, or a held frame that turns out
    /// to be the host's, is passed from a copy). Returns the keeper's last word once it is
    /// complete; nothing after it is passed.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, pass: (UnsafeRawBufferPointer) -> Void) -> KeeperLinkEnd? {
        var index = 0
        // chunk[pending..<index] is to be passed and hasn't been yet.
        var pending = 0
        func passPending(upTo end: Int) {
            if end > pending { pass(UnsafeRawBufferPointer(rebasing: chunk[pending..<end])) }
            pending = end
        }
        while index < chunk.count {
            if payloadLeft > 0 {
                let n = min(payloadLeft, chunk.count - index)
                if held != nil {
                    held!.append(contentsOf: chunk[index..<index + n])
                    pending = index + n
                }
                index += n
                payloadLeft -= n
            } else {
                let headerStart = index
                let continued = !header.isEmpty
                let n = min(Self.fullHeader - header.count, chunk.count - index)
                header.append(contentsOf: chunk[index..<index + n])
                index += n
                guard header.count == Self.fullHeader else {
                    // The rest of this header comes with the next chunk: keep it back.
                    passPending(upTo: headerStart)
                    pending = index
                    continue
                }
                let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
                payloadLeft = max(0, length - Frame.headerLength)
                let isConnectionError = header[4] == FrameType.error.rawValue
                    && header[5] == 0 && header[6] == 0 && header[7] == 0 && header[8] == 0
                if isConnectionError {
                    passPending(upTo: headerStart)
                    pending = index
                    held = header
                } else if continued {
                    passPending(upTo: headerStart)
                    header.withUnsafeBytes { pass($0) }
                    pending = index
                }
                header.removeAll(keepingCapacity: true)
            }
            if payloadLeft == 0, header.isEmpty, let frame = held {
                held = nil
                let payload = Array(frame[Self.fullHeader...])
                if let end = try? WireJSON.decode(KeeperLinkEnd.self, from: payload) {
                    return end
                }
                frame.withUnsafeBytes { pass($0) }
            }
        }
        passPending(upTo: index)
        return nil
    }
}
