import TetherProtocol

/// One channel N of a connection bound to the session by `attach`, and what it is owed.
///
/// Delivery is a cursor over the journal (`nextSeq`), so a replay, live output and a reader
/// that fell behind are one mechanism: records are sent from the journal while the
/// connection isn't backed up, and the rest wait there.
final class Attachment {
    let channel: UInt32
    /// The connection it belongs to (which outlives it).
    unowned let peer: PeerConnection
    /// Attached with `receive`: gets the replay and then every record.
    let receivesEverything: Bool
    /// The next sequence number this channel may be sent.
    var nextSeq: UInt64
    /// Without `receive`: the seq ranges of commands this channel started (end nil while
    /// the command runs). Records in them — output, background output meanwhile — are
    /// forwarded; so are `sessionClosed`/`sessionBroken`, which concern every channel.
    private var commandRanges: [(start: UInt64, end: UInt64?)] = []
    /// Without `receive`: output nobody acknowledged from before the command this channel
    /// starts (what background jobs printed between commands, a disconnected command's
    /// output): its output records are sent ahead of the command's own, so the next
    /// reader shows them instead of acknowledging them unseen.
    private var earlierOutput: ClosedRange<UInt64>?
    /// Inside `earlierOutput`: commands whose invokers, still attached, receive them.
    private var earlierExceptions: [ClosedRange<UInt64>] = []
    /// The `commandEnded` of the last command this channel started (0: none yet).
    private var lastCommandEnd: UInt64 = 0
    /// Records sent and not yet acknowledged on this channel: a reader that stops reading
    /// stops only this channel (protocol.md, "Flow control").
    var window = SendWindow()

    init(channel: UInt32, peer: PeerConnection, receivesEverything: Bool, nextSeq: UInt64) {
        self.channel = channel
        self.peer = peer
        self.receivesEverything = receivesEverything
        self.nextSeq = nextSeq
    }

    var clientID: String? { peer.clientID }

    /// Still bound: not detached, its connection not closed.
    var isAttached: Bool { peer.attachments[channel] === self }

    /// A command this channel started begins at `seq` (its `commandStarted`); output
    /// after `ackedSeq` that this channel has not been sent comes first.
    func commandStarted(at seq: UInt64, ackedSeq: UInt64, except exceptions: [ClosedRange<UInt64>] = []) {
        let first = max(ackedSeq, lastCommandEnd) + 1
        if first < seq {
            earlierOutput = first...(seq - 1)
            earlierExceptions = exceptions
            nextSeq = min(nextSeq, first)
        }
        commandRanges.append((seq, nil))
    }

    /// A retried invoke rejoins a command its first attempt started: its records from
    /// `seq` on (to `end`, if it ended) are this channel's.
    func rejoinCommand(from seq: UInt64, endedAt end: UInt64?) {
        commandRanges.append((seq, end))
        nextSeq = min(nextSeq, seq)
        if let end { lastCommandEnd = max(lastCommandEnd, end) }
    }

    /// …and ends at `seq` (its `commandEnded`).
    func commandEnded(at seq: UInt64) {
        if let last = commandRanges.indices.last, commandRanges[last].end == nil {
            commandRanges[last].end = seq
        }
        lastCommandEnd = seq
    }

    func wants(_ record: Record) -> Bool {
        if receivesEverything { return true }
        if record.kind == .sessionClosed || record.kind == .sessionBroken { return true }
        if let earlierOutput, earlierOutput.contains(record.seq) {
            guard !earlierExceptions.contains(where: { $0.contains(record.seq) }) else { return false }
            return record.kind.isOutput || record.kind == .dropped
        }
        return commandRanges.contains { record.seq >= $0.start && record.seq <= ($0.end ?? .max) }
    }

    /// The cursor moved past `seq`: forget ranges that are behind it.
    func advance(past seq: UInt64) {
        nextSeq = seq + 1
        if let earlierOutput, earlierOutput.upperBound < nextSeq { self.earlierOutput = nil }
        if let first = commandRanges.first, let end = first.end, end < nextSeq {
            commandRanges.removeFirst()
        }
    }

    /// Output produced now is for this channel (so its being backed up holds bash back).
    var isLive: Bool {
        receivesEverything || commandRanges.contains { $0.end == nil }
    }
}
