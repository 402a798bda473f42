import TetherProtocol

/// One channel's flow-control window (protocol.md, "Flow control"): the records sent on
/// it that it has not acknowledged, oldest first. The runspace sends a channel nothing
/// more while `isOpen` is false; the channel's own acks reopen it. Pure bookkeeping.
struct SendWindow {
    private var inFlight: [(seq: UInt64, cost: Int)] = []
    private var head = 0
    /// Bytes sent on the channel and not acknowledged on it.
    private(set) var bytesInFlight = 0
    let size: Int

    init(size: Int = FlowControl.channelWindow) {
        self.size = size
    }

    /// Whether another record may be sent now (it may overshoot by one record).
    var isOpen: Bool { bytesInFlight < size }

    mutating func sent(seq: UInt64, bodyBytes: Int) {
        let cost = FlowControl.cost(ofBody: bodyBytes)
        inFlight.append((seq, cost))
        bytesInFlight += cost
    }

    /// The channel acknowledged every record up to `seq`. Returns whether the window
    /// went from closed to open.
    @discardableResult
    mutating func acknowledged(through seq: UInt64) -> Bool {
        let wasOpen = isOpen
        while head < inFlight.count && inFlight[head].seq <= seq {
            bytesInFlight -= inFlight[head].cost
            head += 1
        }
        if head == inFlight.count {
            inFlight.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 256 && head * 2 > inFlight.count {
            inFlight.removeFirst(head)
            head = 0
        }
        return !wasOpen && isOpen
    }
}
