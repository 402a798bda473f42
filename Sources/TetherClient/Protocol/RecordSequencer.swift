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

    mutating func check(_ seq: UInt64) throws(TetherClientError) -> Verdict {
        if seq <= lastSeq { return .duplicate }
        if strict && seq != lastSeq + 1 {
            throw TetherClientError(.protocolViolation,
                "output record \(seq) arrived after \(lastSeq): records \(lastSeq + 1)…\(seq - 1) are missing")
        }
        lastSeq = seq
        return .accept
    }
}
