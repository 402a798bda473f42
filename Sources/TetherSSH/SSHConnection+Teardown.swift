import CLibSSH2
import Glibc
import TetherIO

/// The orderly close: finish a committed send, flush (when asked), channel close (waits for
/// the remote's close, which carries the exit status), channel free, session disconnect,
/// socket close — each step repeated on EAGAIN, the whole bounded by `teardownSeconds`.
extension SSHConnection {
    enum TeardownStep {
        case finishCommitted, flush, closeChannel, freeChannel, disconnect, done
    }

    static let teardownSeconds = 2.0

    /// `reportWhenClosed`: onClose is still owed (the remote ended) and waits for the
    /// channel close, so it can say how the subsystem exited.
    func beginTeardown(flush: Bool, reportWhenClosed: Bool = false) {
        enter(.closing)
        keepAlive = self
        flushBeforeClose = flush
        owesCloseReport = reportWhenClosed
        teardownStep = .finishCommitted
        if let setupTimer { reactor.cancel(setupTimer) }
        setupTimer = nil
        teardownTimer = reactor.schedule(after: Self.teardownSeconds) { [weak self] in
            guard let self else { return }
            self.teardownTimer = nil
            self.finishTeardown()
        }
        continueTeardown()
    }

    func continueTeardown() {
        guard phase == .closing, let session else { finishTeardown(); return }
        while true {
            switch teardownStep {
            case .finishCommitted:
                if let call = committed {
                    let step: Step
                    switch call {
                    case .write: step = writeQueued()
                    case .read(let stream): step = discardIncoming(stream: stream)
                    case .sendEOF:
                        committed = nil
                        let rc = libssh2_channel_send_eof(channel)
                        if rc == LIBSSH2_ERROR_EAGAIN { committed = .sendEOF }
                        step = rc == 0 || rc == LIBSSH2_ERROR_EAGAIN ? .stalled : .ended
                    }
                    if step == .ended || phase != .closing { finishTeardown(); return }
                    if committed != nil { waitForLibSSH2(); return }
                }
                teardownStep = .flush
            case .flush:
                if flushBeforeClose && !outbound.isEmpty {
                    if writeQueued() == .ended || phase != .closing { finishTeardown(); return }
                    if committed != nil { waitForLibSSH2(); return }
                    if !outbound.isEmpty {
                        // Window closed: the peer may be blocked writing to us. Drop what it
                        // sends (the owner has closed) so its window adjust can come back.
                        if discardIncoming(stream: 0) == .ended { finishTeardown(); return }
                        if committed != nil { waitForLibSSH2(); return }
                        watchSocket(.readable)
                        return
                    }
                }
                outbound.removeAll()
                teardownStep = .closeChannel
            case .closeChannel:
                guard let channel else { teardownStep = .disconnect; continue }
                let rc = libssh2_channel_close(channel)
                if rc == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
                reportClose()
                teardownStep = rc == 0 ? .freeChannel : .done
            case .freeChannel:
                guard let channel else { teardownStep = .disconnect; continue }
                let rc = libssh2_channel_free(channel)
                if rc == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
                self.channel = nil
                teardownStep = .disconnect
            case .disconnect:
                let rc = libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, "closed by tether", "")
                if rc == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
                teardownStep = .done
            case .done:
                finishTeardown()
                return
            }
        }
    }

    /// Reads and drops one stream until EAGAIN (during teardown nobody wants the bytes).
    private func discardIncoming(stream: Int32) -> Step {
        guard let channel, let session else { return .ended }
        if committed == .read(stream: stream) { committed = nil }
        let buffer = shared.readBuffer
        while true {
            let n = libssh2_channel_read_ex(channel, stream, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
            if n > 0 { continue }
            if n == Int(LIBSSH2_ERROR_EAGAIN) {
                if libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
                    committed = .read(stream: stream)
                }
                return .stalled
            }
            return n == 0 ? .stalled : .ended
        }
    }

    /// The onClose owed after the remote ended: nil for a clean exit, else how it died.
    private func reportClose() {
        guard owesCloseReport else { return }
        owesCloseReport = false
        deliverClose(exitReport())
    }

    private func exitReport() -> SSHError? {
        guard let channel, let session else { return nil }
        let said = stderrNote.isEmpty ? "" : ": \(stderrNote)"
        var signalName: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        if libssh2_channel_get_exit_signal(channel, &signalName, &signalLength, nil, nil, nil, nil) == 0,
           let signalName {
            let name = String(cString: signalName)
            libssh2_free(session, signalName)
            return SSHError(.disconnected, host: target.displayName, "the '\(target.subsystem)' subsystem was killed by signal \(name)\(said)")
        }
        let status = libssh2_channel_get_exit_status(channel)
        guard status == 0 else {
            let hint = status == 127 ? " (its program was not found: check the Subsystem line in sshd_config)" : ""
            return SSHError(.disconnected, host: target.displayName, "the '\(target.subsystem)' subsystem exited with status \(status)\(hint)\(said)")
        }
        return nil
    }

    func finishTeardown() {
        if owesCloseReport {
            owesCloseReport = false
            deliverClose(exitReport())
        }
        abort()
    }
}
