import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol

/// Connections and channels: handshake done, attach/detach, acks, stdin, flow control,
/// and the registry's `takenOver`.
extension Session {
    /// A connection finished its handshake.
    func peerReady(_ peer: PeerConnection) {
        if peer.role == .registry { publishStatus() }
    }

    /// A connection closed (either side): its channels are detached, nothing else changes.
    func peerClosed(_ peer: PeerConnection) {
        for attachment in Array(peer.attachments.values) { drop(attachment) }
        for jobChannel in Array(peer.jobChannels.values) { dropJobChannel(jobChannel) }
        peers[ObjectIdentifier(peer)] = nil
        if running?.pausedSender === peer { running?.pausedSender = nil }
        publishStatus()
        interpreter.updateReading()
        if shuttingDown { continueShutdown() }
    }

    /// A connection's queue drained: send what its channels are owed, maybe read on.
    func peerDrained(_ peer: PeerConnection) {
        for attachment in peer.attachments.values { pump(attachment) }
        interpreter.updateReading()
        jobPeerDrained(peer)
    }

    // MARK: Attach and detach

    func attach(from peer: PeerConnection, channel: UInt32, requestID: UInt32, instanceID: String, receive: Bool) {
        guard instanceID.lowercased() == options.instanceID.lowercased() else {
            peer.respond(channel: channel, id: requestID, .failure(ErrorBody(.notFound,
                "no session \(instanceID) here: this runspace hosts session \(options.instanceID)")))
            return
        }
        guard peer.attachments[channel] == nil else {
            peer.respond(channel: channel, id: requestID, .failure(ErrorBody(.badRequest,
                "channel \(channel) is already attached to session \(options.instanceID)")))
            return
        }
        // A receiver replays everything not yet acknowledged; an invoker starts from now.
        let attachment = Attachment(channel: channel, peer: peer, receivesEverything: receive,
                                    nextSeq: (receive ? journal.ackedSeq : journal.lastSeq) + 1)
        peer.attachments[channel] = attachment
        if peer.attachedSince == nil { peer.attachedSince = WallClock.now() }
        peer.respond(channel: channel, id: requestID, .attached(AttachInfo(
            session: info, ackedSeq: journal.ackedSeq, lastSeq: journal.lastSeq,
            runningCommandID: running?.id, tookOver: false, stdinEnded: running?.stdin.map(\.inputEnded))))
        pump(attachment)
        publishStatus()
        interpreter.updateReading()
    }

    func detach(_ attachment: Attachment, requestID: UInt32) {
        let peer = attachment.peer
        let channel = attachment.channel
        drop(attachment, answeringWaiting: true)
        peer.respond(channel: channel, id: requestID, .done)
    }

    /// Unbinds a channel. Its waiting invokes are withdrawn (answered, if the channel can
    /// still hear it); a command it started runs on, its output journaled for a `receive`.
    func drop(_ attachment: Attachment, answeringWaiting: Bool = false) {
        let peer = attachment.peer
        guard peer.attachments[attachment.channel] === attachment else { return }
        peer.attachments[attachment.channel] = nil
        for entry in waiting where entry.origin === attachment {
            if let timer = entry.timer { reactor.cancel(timer) }
            if answeringWaiting {
                peer.respond(channel: attachment.channel, id: entry.requestID, .failure(ErrorBody(.notAttached,
                    "channel \(attachment.channel) detached before its command could start")))
            }
        }
        waiting.removeAll { $0.origin === attachment }
        // Its reader gone, `drop` may discard again what nobody else reads.
        dropUnreadOutputToFit()
        publishStatus()
        interpreter.updateReading()
    }

    /// The registry gave the session to another client (`connect --force`): every channel
    /// of another client is told and detached.
    func takenOver(by holder: Holder) {
        for peer in peers.values where peer.role == .subsystem && peer.clientID != holder.clientID {
            for attachment in Array(peer.attachments.values) {
                peer.send(.takenOver(by: holder), channel: attachment.channel)
                drop(attachment)
            }
        }
    }

    /// The registry is removing the session (terminate follows): every attached channel
    /// learns who did it, so a client following a command can say so instead of just
    /// seeing the command die.
    func removed(by remover: Holder) {
        for peer in peers.values where peer.role == .subsystem {
            for attachment in peer.attachments.values {
                peer.send(.removed(by: remover), channel: attachment.channel)
            }
        }
    }

    // MARK: Acknowledgements

    /// `ack seq` from any channel: acknowledgement is per session; the credit it gives
    /// back is the channel's own (`on`: the attachment it came on, if attached).
    func acknowledge(_ seq: UInt64, on attachment: Attachment? = nil) {
        if let attachment, attachment.window.acknowledged(through: seq) { pump(attachment) }
        if journal.acknowledge(through: seq) {
            interpreter.updateReading()
            if journal.isEmpty && running == nil { scheduleIdleTrim() }
        }
    }

    /// Once the session has been idle a moment with nothing journaled, hands the heap that
    /// a burst of output used back to the kernel: glibc keeps freed memory otherwise, and
    /// an idle session should cost next to nothing.
    func scheduleIdleTrim() {
        guard idleTrimTimer == nil else { return }
        idleTrimTimer = reactor.schedule(after: Session.idleTrimDelay) { [unowned self] in
            self.idleTrimTimer = nil
            if self.journal.isEmpty && self.running == nil { _ = tether_malloc_trim() }
        }
    }

    // MARK: Stdin

    func stdinData(_ bytes: [UInt8], from peer: PeerConnection, channel: UInt32) {
        // Stdin for a command that has ended (or never asked for it) is discarded.
        guard peer.attachments[channel] != nil, let command = running else { return }
        if let terminal = command.terminal {
            terminal.write(bytes)  // keystrokes; a terminal never fills the way a FIFO does
            return
        }
        guard let feeder = command.stdin else { return }
        feeder.write(bytes)
        if feeder.isBackedUp && command.pausedSender == nil {
            peer.connection.pauseReading()
            command.pausedSender = peer
        }
    }

    /// The client's window changed size: the running command's terminal takes it.
    func resize(_ size: TerminalSize, from attachment: Attachment, requestID: UInt32) {
        running?.terminal?.resize(size)
        attachment.peer.respond(channel: attachment.channel, id: requestID, .done)
    }

    func stdinEOF(from peer: PeerConnection, channel: UInt32) {
        guard peer.attachments[channel] != nil else { return }
        running?.stdin?.endOfInput()
    }

    /// The stdin queue drained: let a paused sender go on.
    func resumeStdinSender(of command: RunningCommand) {
        guard let peer = command.pausedSender else { return }
        command.pausedSender = nil
        peer.connection.resumeReading()
        peer.connection.deliverBufferedFrames()
    }

    // MARK: Settings

    /// The registry changed the buffering (a `release` with new settings).
    func configure(outputBuffering newBuffering: OutputBuffering?, bufferLimit newLimit: Int?) {
        if let newBuffering { outputBuffering = newBuffering }
        if let newLimit { bufferLimit = newLimit }
        dropUnreadOutputToFit()
        pumpAll()
        interpreter.updateReading()
        jobsConfigured()
    }
}
