import TetherProtocol

/// Eternal Terminal's resume rule on the receiving side: a record whose seq we have
/// already seen is a replay and is dropped; a record that skips one is an error, because
/// then a byte would be lost without anyone noticing.
struct RecordSequencer {
    /// The highest sequence number accepted so far.
    private(set) var lastSeq: UInt64
    /// Whether every record must follow the previous one. A `receive` channel sees the
    /// whole journal, so it is strict from the start; an invoke channel sees only its own
    /// commands (background output between commands goes elsewhere), so it becomes strict
    /// at `commandStarted` and relaxes again at `commandEnded`.
    var strict: Bool

    init(after seq: UInt64, strict: Bool) {
        lastSeq = seq
        self.strict = strict
    }

    enum Verdict: Equatable { case accept, duplicate }

    /// `covering`: how many sequence numbers the record stands for. 1, except for a
    /// `dropped` record, which takes the last seq of the run of records it replaced: at
    /// seq S with count N it stands for S−N+1…S, so the gap before it is explained.
    mutating func check(_ seq: UInt64, covering count: UInt64 = 1) throws(TetherClientError) -> Verdict {
        if seq <= lastSeq { return .duplicate }
        let first = seq - (min(max(count, 1), seq) - 1)
        if strict && first > lastSeq + 1 {
            throw TetherClientError(.protocolViolation,
                "output record \(seq) arrived after \(lastSeq): records \(lastSeq + 1)…\(first - 1) are missing")
        }
        lastSeq = seq
        return .accept
    }

    mutating func check(_ record: Record) throws(TetherClientError) -> Verdict {
        var count: UInt64 = 1
        if record.kind == .dropped, let counts = try? record.droppedCounts() { count = counts.records }
        return try check(record.seq, covering: count)
    }
}
