/// Per-channel flow control (protocol.md, "Flow control"): a runspace sends a channel at
/// most `channelWindow` bytes of records that the channel has not acknowledged yet, so a
/// reader that stops only stops its own channel — every hop in between (subsystem, SSH
/// connection, keeper) keeps moving everyone else's frames, and holds at most one window
/// per stalled channel. What the window holds back stays in the journal: nothing is lost.
public enum FlowControl {
    /// Bytes of unacknowledged records in flight per channel. Several times the ack
    /// interval (a client acknowledges at least every 1 MiB it consumes), so a reader that
    /// keeps up never waits for credit.
    public static let channelWindow = 8 << 20
    /// A client acknowledges at least this often (bytes consumed), and at each command end.
    public static let ackInterval = 1 << 20

    /// What one record counts against a window: its body plus its frame's head.
    public static func cost(ofBody bytes: Int) -> Int { bytes + 18 }
}
