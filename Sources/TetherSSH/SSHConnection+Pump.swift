import CLibSSH2
import CTetherPosix
import TetherIO

/// Moving bytes once the subsystem runs: write what's queued, read until EAGAIN, and
/// honour libssh2's retry rule — a call that returned EAGAIN after committing a packet
/// (libssh2 says it is blocked OUTBOUND) is repeated, and nothing else is called on the
/// session, until it completes. A write blocked only by the peer's window (INBOUND) is not
/// committed: reading must go on, or neither side's window would ever reopen.
extension SSHConnection {
    enum Step {
        case progressed
        /// Nothing more now: EAGAIN, window closed, or nothing to do.
        case stalled
        /// The connection failed or ended; stop touching it.
        case ended
    }

    /// Bytes delivered per pump before yielding to other connections on the loop.
    static let pumpBudgetBytes = 4 << 20
    /// Keep this much of the subsystem's stderr for error messages.
    static let stderrTailBytes = 4096

    func schedulePump() {
        if isPumping { pumpAgain = true; return }
        guard !pumpScheduled else { return }
        pumpScheduled = true
        reactor.schedule(after: 0) { [weak self] in
            guard let self else { return }
            self.pumpScheduled = false
            self.advance()
        }
    }

    func pump() {
        if isPumping { pumpAgain = true; return }
        isPumping = true
        var budget = Self.pumpBudgetBytes
        var alive = true
        repeat {
            pumpAgain = false
            alive = pumpPass(budget: &budget)
        } while alive && pumpAgain && phase == .ready && budget > 0
        isPumping = false
        guard alive, phase == .ready else { return }
        if budget <= 0 || pumpAgain { schedulePump() }
        updateInterest()
    }

    /// One round of retry-committed, write, read, EOF. False once the connection ended.
    private func pumpPass(budget: inout Int) -> Bool {
        while phase == .ready {
            if let call = committed {
                if retry(call, budget: &budget) == .ended { return false }
                if committed != nil { return true }
            }
            let wrote = writeQueued()
            if wrote == .ended { return false }
            if committed != nil { return true }
            var read = Step.stalled
            if !readingPaused {
                read = readAvailable(budget: &budget)
                if read == .ended { return false }
                if committed != nil { return true }
            }
            if eofRequested && !eofSent && outbound.isEmpty {
                if sendEOFNow() == .ended { return false }
                if committed != nil { return true }
            }
            // A read may have carried the peer's window adjust: try the writes again.
            guard read == .progressed && !outbound.isEmpty && budget > 0 else { return true }
        }
        return false
    }

    private func retry(_ call: CommittedCall, budget: inout Int) -> Step {
        switch call {
        case .write: return writeQueued()
        case .read(let stream): return read(stream: stream, budget: &budget)
        case .sendEOF: return sendEOFNow()
        }
    }

    /// Where to wait when the pump has stopped.
    func updateInterest() {
        guard phase == .ready, socket >= 0 else { return }
        if committed != nil {
            waitForLibSSH2()
        } else if !readingPaused || peerWindowClosed || !outbound.isEmpty {
            watchSocket(.readable)
        } else {
            watchSocket([])
        }
    }

    // MARK: Writing

    /// Hands queued bytes to libssh2 until the queue is empty or it can't take more.
    func writeQueued() -> Step {
        guard let channel, let session else { return .ended }
        if committed == .write { committed = nil }
        var progressed = false
        // The read libssh2 makes before a write goes to the kernel even when the last one
        // found the socket empty (`tether_recv_unless_drained`): a link that went down
        // since is noticed as the write is made — before a keeper's client is told its
        // bytes went out — as it was before reads were skipped.
        if !outbound.isEmpty { tether_socket_may_have_input(socket) }
        while !outbound.isEmpty {
            let rc = outbound.writeNext { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    Int(libssh2_channel_write_ex(channel, 0, chars.baseAddress, chars.count))
                }
            }
            // libssh2 reads the socket dry before it writes (for the peer's window adjusts).
            noteWhetherDrained(session)
            if rc > 0 {
                progressed = true
                peerWindowClosed = false
                continue
            }
            if rc == Int(LIBSSH2_ERROR_EAGAIN) || rc == 0 {
                if libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 && rc != 0 {
                    committed = .write
                } else {
                    peerWindowClosed = true
                }
                return progressed ? .progressed : .stalled
            }
            transferFailed(Int32(rc), doing: "sending data")
            return .ended
        }
        if progressed && phase == .ready {
            onDrained()
            if phase != .ready { return .ended }
        }
        return progressed ? .progressed : .stalled
    }

    private func sendEOFNow() -> Step {
        guard let channel else { return .ended }
        if committed == .sendEOF { committed = nil }
        let rc = libssh2_channel_send_eof(channel)
        // A send may run a key re-exchange the server asked for, which reads packets:
        // whether it left any behind in libssh2's buffer is not worth working out here.
        socketMayHaveInput = true
        if rc == LIBSSH2_ERROR_EAGAIN {
            committed = .sendEOF
            return .stalled
        }
        guard rc == 0 else {
            transferFailed(rc, doing: "sending EOF")
            return .ended
        }
        eofSent = true
        return .progressed
    }

    // MARK: Reading

    /// Reads stdout (delivered) and stderr (kept for messages) until EAGAIN; then notices
    /// the remote's EOF.
    private func readAvailable(budget: inout Int) -> Step {
        let out = read(stream: 0, budget: &budget)
        if out == .ended || committed != nil { return out }
        var ignored = Int.max
        let err = read(stream: 1, budget: &ignored)
        if err == .ended || committed != nil { return err }
        // Reading stderr can pull stdout packets off the socket into libssh2's queue
        // (and the other way round): go round again while it holds data for us.
        // (1 means data; it can also return an error for a malformed queued packet, which
        // must not send the pump round forever.)
        if let channel, !readingPaused,
           libssh2_poll_channel_read(channel, 0) == 1 || libssh2_poll_channel_read(channel, 1) == 1 {
            pumpAgain = true
        }
        if let channel, budget > 0, libssh2_channel_eof(channel) == 1 {
            remoteEnded()
            return .ended
        }
        return out == .progressed || err == .progressed ? .progressed : .stalled
    }

    /// Reads one stream until EAGAIN or the budget runs out.
    ///
    /// Each libssh2 read first reads the socket until recv(2) says EAGAIN, decoding every
    /// whole packet into libssh2's queue, and only then hands out data from the queue. So
    /// once a call has ended that way (`socketMayHaveInput` false) and the queue holds
    /// nothing for `stream`, another call would learn nothing but pay a recv(2): it is
    /// skipped, and poll(2) says when more arrives. A short command's answer then costs
    /// one recv(2) for the data and one EAGAIN instead of six (and the write of the next
    /// request none), on every wake-up of a loop that waits for answers.
    private func read(stream: Int32, budget: inout Int) -> Step {
        guard let channel, let session else { return .ended }
        if committed == .read(stream: stream) {
            committed = nil
        } else if !socketMayHaveInput && !libssh2Holds(stream, of: channel) {
            return .stalled
        }
        let buffer = shared.readBuffer
        var progressed = false
        var emptyReads = 0
        while budget > 0 {
            let n: Int
            if stream == 0, let readsInto {
                // The consumer handles the bytes before it returns: note libssh2's state first.
                n = readsInto { target in
                    let read = libssh2_channel_read_ex(channel, 0, target.baseAddress!.assumingMemoryBound(to: CChar.self), target.count)
                    noteWhetherDrained(session)
                    return read
                }
            } else {
                n = libssh2_channel_read_ex(channel, stream, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
                noteWhetherDrained(session)
            }
            if n > 0 {
                progressed = true
                // Lent in place: the consumer copies what it keeps (one copy in all). With
                // `readsInto` the bytes are already where the consumer wants them.
                if stream == 0 {
                    budget -= n
                    if readsInto == nil { onData?(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
                    if phase != .ready { return .ended }
                    // The consumer may have paused us from inside onData: stop here, or the
                    // rest of what libssh2 holds would arrive while paused.
                    if readingPaused { return .progressed }
                } else {
                    keepStderr(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                }
                if !socketMayHaveInput && !libssh2Holds(stream, of: channel) { break }
                continue
            }
            if n == Int(LIBSSH2_ERROR_EAGAIN) {
                // EAGAIN while sending a window adjust: that packet is now committed.
                if libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
                    committed = .read(stream: stream)
                }
                break
            }
            if n == 0 {
                // 0 is the end only if the channel says so. Otherwise libssh2 processed a
                // packet that was not data for this stream (the other stream, a window
                // adjust) and more may sit in its buffers, where poll(2) can't see them:
                // waiting for the socket then would hang. Keep reading until EAGAIN.
                if libssh2_channel_eof(channel) != 0 { break }
                emptyReads += 1
                if emptyReads < 64 { continue }
                pumpAgain = true  // come back on the next pass rather than spin here
                break
            }
            transferFailed(Int32(n), doing: "receiving data")
            return .ended
        }
        return progressed ? .progressed : .stalled
    }

    /// After a libssh2 call: if its last look at the socket was a recv(2) that said EAGAIN
    /// (libssh2 then blocks INBOUND), the socket is empty and libssh2's buffer holds no
    /// whole packet — it reads only when it lacks one. Anything else (a call that never got
    /// that far, one blocked sending) leaves the question open, and reads go on as usual.
    private func noteWhetherDrained(_ session: OpaquePointer) {
        socketMayHaveInput = libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_INBOUND == 0
    }

    /// Whether libssh2's queue may hold data for `stream`. Only a plain "no" (0) counts as
    /// no: the check fails (negative) on a queued packet it can't parse — a 1-byte reply
    /// to a keepalive — and data may sit behind that.
    private func libssh2Holds(_ stream: Int32, of channel: OpaquePointer) -> Bool {
        libssh2_poll_channel_read(channel, stream) != 0
    }

    private func keepStderr(_ chunk: UnsafeRawBufferPointer) {
        stderrTail.append(contentsOf: chunk)
    }

    func transferFailed(_ rc: Int32, doing: String) {
        guard let session else { return }
        let (code, message) = LibSSH2.lastError(session)
        if LibSSH2.isConnectionLoss(rc) || LibSSH2.isConnectionLoss(code) {
            fail(.disconnected, "connection lost while \(doing): \(message.isEmpty ? "closed by the remote host" : message)")
        } else {
            fail(.libssh2, "\(doing) failed: \(message) (libssh2 error \(rc))")
        }
    }

    /// The subsystem closed its stdout: close our side in order, then report how it ended.
    private func remoteEnded() {
        beginTeardown(flush: false, reportWhenClosed: true)
    }
}
