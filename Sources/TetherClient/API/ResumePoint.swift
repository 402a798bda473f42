/// Where this process stands in a followed command's output, to pick it up on a new
/// connection after the old one was lost (`RemoteSession.resume(from:)`): the same
/// bytes, none twice, none skipped.
///
/// Take it from `Invocation.resumePoint` / `Reception.resumePoint` once `output` has
/// thrown a `.connectionLost` error (by then everything that arrived has been handed to
/// you, so the point is exact).
public struct ResumePoint: Sendable, Equatable {
    /// What is being followed: a command this process started, or a reception.
    public enum Origin: Sendable, Equatable {
        /// `invoke`: the resume ends at this command's end and its status is the command's.
        case invocation
        /// `receive`: the resume ends where the reception would have.
        case reception
    }

    public var origin: Origin
    public var instanceID: String
    public var sessionName: String
    /// The command followed; nil for a reception of a session that ran none (it ends at
    /// `endSeq`).
    public var commandID: UInt64?
    /// The seq of the last record handed to the consumer (0: none yet). Records up to it
    /// are skipped on resume even if their acknowledgement never reached the host.
    public var deliveredSeq: UInt64
    /// A reception without a command ends at this seq (the session's last at attach).
    public var endSeq: UInt64
    /// A reception's exit status so far (the last command that ended in what it got).
    public var exitStatusSoFar: Int32?
    /// The command's stdin was being forwarded and had not reached its end when the
    /// connection was lost. Stdin cannot be resumed (the host does not acknowledge it, so
    /// bytes in flight may or may not have arrived): the resume closes the command's
    /// stdin instead, and the command sees end of file.
    public var stdinInterrupted: Bool
    /// Stdin was forwarded at all (the resume then ends it, whatever reached the host).
    public var stdinForwarded: Bool
    /// An invocation of which nothing has been delivered yet, not even its start: output
    /// before its `commandStarted` (background jobs') is shown first, as the invoke shows it.
    public var awaitingCommandStart: Bool

    public init(origin: Origin, instanceID: String, sessionName: String, commandID: UInt64?,
                deliveredSeq: UInt64, endSeq: UInt64 = 0, exitStatusSoFar: Int32? = nil,
                stdinInterrupted: Bool = false, stdinForwarded: Bool = false, awaitingCommandStart: Bool = false) {
        self.origin = origin
        self.instanceID = instanceID
        self.sessionName = sessionName
        self.commandID = commandID
        self.deliveredSeq = deliveredSeq
        self.endSeq = endSeq
        self.exitStatusSoFar = exitStatusSoFar
        self.stdinInterrupted = stdinInterrupted
        self.stdinForwarded = stdinForwarded
        self.awaitingCommandStart = awaitingCommandStart
    }
}
