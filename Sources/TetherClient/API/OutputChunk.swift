import TetherProtocol

/// One piece of a command's output, in the order the host recorded it.
public enum OutputChunk: Sendable, Equatable {
    /// Bytes the command wrote to stdout.
    case stdout([UInt8])
    /// Bytes the command wrote to stderr.
    case stderr([UInt8])
    /// The session was in `drop` mode and nobody read for a while: this much output
    /// (bytes, records) was discarded at this point.
    case dropped(bytes: UInt64, records: UInt64)
    /// A warning, verbose, information or progress record (`tether-warning` and the
    /// others, in the session), in its place among stdout and stderr.
    case stream(StreamRecord)

    var byteCount: Int {
        switch self {
        case .stdout(let b), .stderr(let b): b.count
        case .dropped: 16
        case .stream(let record): record.body.count
        }
    }

    /// The chunk a record carrying output (stdout, stderr, dropped, the other streams)
    /// stands for; nil for the others.
    init?(_ record: Record) {
        switch record.kind {
        case .stdout: self = .stdout(record.body)
        case .stderr: self = .stderr(record.body)
        case .dropped:
            let counts: (bytes: UInt64, records: UInt64) = (try? record.droppedCounts()) ?? (0, 0)
            self = .dropped(bytes: counts.bytes, records: counts.records)
        case .warning, .verbose, .information, .progress:
            guard let stream = try? StreamRecord(record) else { return nil }
            self = .stream(stream)
        case .commandStarted, .commandEnded, .sessionClosed, .sessionBroken, .jobEnded, .jobCaughtUp:
            return nil
        }
    }
}
