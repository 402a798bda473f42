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
        var index = 0
        while index < chunk.count {
            if payloadLeft > 0 {
                let n = min(payloadLeft, chunk.count - index)
                if held != nil {
                    held!.append(contentsOf: chunk[index..<index + n])
                } else {
                    out.append(contentsOf: chunk[index..<index + n])
                }
                index += n
                payloadLeft -= n
            } else {
                let n = min(Self.fullHeader - header.count, chunk.count - index)
                header.append(contentsOf: chunk[index..<index + n])
                index += n
                guard header.count == Self.fullHeader else { continue }
                let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
                payloadLeft = max(0, length - Frame.headerLength)
                let isConnectionError = header[4] == FrameType.error.rawValue
                    && header[5] == 0 && header[6] == 0 && header[7] == 0 && header[8] == 0
                if isConnectionError {
                    held = header
                } else {
                    out.append(contentsOf: header)
                }
                header.removeAll(keepingCapacity: true)
            }
            if payloadLeft == 0, header.isEmpty, let frame = held {
                held = nil
                let payload = Array(frame[Self.fullHeader...])
                if let end = try? WireJSON.decode(KeeperLinkEnd.self, from: payload) {
                    return .ended(out, end)
                }
                out.append(contentsOf: frame)
            }
        }
        return .bytes(out)
    }
}
