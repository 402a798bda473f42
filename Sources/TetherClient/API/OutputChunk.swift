/// One piece of a command's output, in the order the host recorded it.
public enum OutputChunk: Sendable, Equatable {
    /// Bytes the command wrote to stdout.
    case stdout([UInt8])
    /// Bytes the command wrote to stderr.
    case stderr([UInt8])
    /// The session was in `drop` mode and nobody read for a while: this much output
    /// (bytes, records) was discarded at this point.
    case dropped(bytes: UInt64, records: UInt64)

    var byteCount: Int {
        switch self {
        case .stdout(let b), .stderr(let b): b.count
        case .dropped: 16
        }
    }
}
