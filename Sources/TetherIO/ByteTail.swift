/// The last `limit` bytes of a stream — a child's or a subsystem's stderr, kept only to be
/// quoted when a connection ends badly.
public struct ByteTail: Sendable {
    public let limit: Int
    public private(set) var bytes: [UInt8] = []

    public init(limit: Int) {
        self.limit = limit
    }

    public mutating func append<S: Sequence>(contentsOf chunk: S) where S.Element == UInt8 {
        bytes.append(contentsOf: chunk)
        if bytes.count > limit { bytes.removeFirst(bytes.count - limit) }
    }

    /// Its last `count` lines, joined with " / " (empty when nothing was kept).
    public func lastLines(_ count: Int = 3) -> String {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n").suffix(count).joined(separator: " / ")
    }
}
