import TetherProtocol

/// A channel N of a connection bound to the session's jobs (`jobs` request), and the
/// reception it carries, if any: a cursor over one job's journal, as `Attachment` is over
/// the session's.
final class JobChannel {
    let channel: UInt32
    unowned let peer: PeerConnection

    struct Reception {
        let job: Job
        var nextSeq: UInt64
        /// Live until the job ends; else up to `caughtUpAt`.
        let follow: Bool
        let caughtUpAt: UInt64
    }
    var reception: Reception?
    /// The job the channel's acks are for: the last one it received (acks trail the
    /// records, so they may come after the reception has ended).
    weak var acknowledgedJob: Job?

    init(channel: UInt32, peer: PeerConnection) {
        self.channel = channel
        self.peer = peer
    }

    /// Output produced now goes to this channel (so its backing up holds the job back).
    func isLive(for job: Job) -> Bool {
        guard let reception, reception.job === job else { return false }
        return reception.follow
    }
}
