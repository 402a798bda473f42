import Glibc
import TetherIO
import TetherProtocol

/// Commands: one at a time, the rest wait in order (or fail `busy`), signals, and the
/// end of bash.
extension Session {
    /// How long an invoke with `wait` waits by default (protocol.md: 240 s).
    static let defaultWaitTimeout: Double = 240

    func invoke(_ request: InvokeRequest, from origin: Attachment, requestID: UInt32) {
        let peer = origin.peer
        let channel = origin.channel
        func fail(_ code: ErrorCode, _ message: String) {
            peer.respond(channel: channel, id: requestID, .failure(ErrorBody(code, message)))
        }
        if let why = DriverLine.unusableReason(request.script) {
            return fail(.badRequest, "the script \(why)")
        }
        for (index, argument) in request.arguments.enumerated() {
            if let why = DriverLine.unusableReason(argument) {
                return fail(.badRequest, "argument \(index + 1) \(why)")
            }
        }
        if let refusal = refusal(of: request, from: origin) {
            return peer.respond(channel: channel, id: requestID, .failure(refusal))
        }
        if let timeout = request.waitTimeout, !(timeout >= 0 && timeout.isFinite) {
            return fail(.badRequest, "waitTimeout must be a finite number of seconds ≥ 0, not \(timeout)")
        }
        if let token = request.token {
            // A retry of an invoke whose answer was lost: the first attempt either started
            // the command (rejoin it), still waits (this attempt takes its place), or never
            // arrived (go on and start it). Never twice.
            if let known = invokeTokens[token] {
                return rejoin(known, from: origin, requestID: requestID)
            }
            if let entry = waiting.first(where: { $0.request.token == token }) {
                entry.origin = origin
                entry.requestID = requestID
                return
            }
        }
        if let refusal = refusalForNewCommands() {
            return fail(refusal.code, refusal.message)
        }
        if running == nil && waiting.isEmpty && interpreter.isIdle && !jobTable.isShellBusy {
            start(request, from: origin, requestID: requestID)
            return
        }
        // bash forking a job is busy for a moment only: the command waits for it.
        guard request.wait || (running == nil && jobTable.isShellBusy) else {
            return fail(.busy, busyMessage(waited: nil))
        }
        let entry = WaitingInvoke(request: request, requestID: requestID, origin: origin)
        let timeout = request.waitTimeout ?? Session.defaultWaitTimeout
        entry.timer = reactor.schedule(after: timeout) { [unowned self, weak entry] in
            guard let entry, let index = self.waiting.firstIndex(where: { $0 === entry }) else { return }
            self.waiting.remove(at: index)
            entry.origin.peer.respond(channel: entry.origin.channel, id: entry.requestID,
                                      .failure(ErrorBody(.busy, self.busyMessage(waited: timeout))))
        }
        waiting.append(entry)
    }

    /// Why no command can start now, if none can.
    func refusalForNewCommands() -> ErrorBody? {
        switch life {
        case .closed(_, let reason):
            return ErrorBody(.sessionClosed, "the session is closed: \(reason)")
        case .broken(_, let reason):
            return ErrorBody(.sessionBroken, "the session is broken: \(reason)")
        case .running:
            if terminating || shuttingDown {
                return ErrorBody(.sessionClosed, "the session is being terminated")
            }
            return nil
        }
    }

    func busyMessage(waited: Double?) -> String {
        let seconds = running.map { Int((Reactor.now() - $0.startedAt) / 1_000_000_000) } ?? 0
        let waitedPart = waited.map { " (waited \(Int($0))s)" } ?? ""
        return "session busy: a command has been running for \(seconds)s\(waitedPart); try again later or wait longer"
    }

    /// Starts the oldest waiting invoke, if bash is free.
    func startNextWaiting() {
        guard running == nil, !jobTable.isShellBusy, interpreter.isIdle, !waiting.isEmpty else { return }
        let next = waiting.removeFirst()
        if let timer = next.timer { reactor.cancel(timer) }
        if let refusal = refusalForNewCommands() {
            next.origin.peer.respond(channel: next.origin.channel, id: next.requestID, .failure(refusal))
            return
        }
        start(next.request, from: next.origin, requestID: next.requestID)
    }

    /// How long an invoke's answer may wait for the command's end to go out with it: far
    /// below what a person notices, above what a short command takes (`true`: ~0.2 ms).
    static let startAnswerHold = 0.002

    /// A retried invoke finds the command its first attempt started: the channel is
    /// answered `started` with that command's id and gets its records from its start (as
    /// far as nobody acknowledged them), then live; stdin from it feeds the command.
    private func rejoin(_ known: InvokeToken, from origin: Attachment, requestID: UInt32) {
        let firstUnacked = journal.ackedSeq + 1
        if let end = known.endSeq, end < firstUnacked {
            origin.peer.respond(channel: origin.channel, id: requestID, .failure(ErrorBody(.notFound,
                "the command this invoke started (id \(known.commandID)) has ended, and another client received its output and exit status (tether receive)")))
            return
        }
        origin.peer.respond(channel: origin.channel, id: requestID, .started(commandID: known.commandID))
        origin.rejoinCommand(from: max(known.startSeq, firstUnacked), endedAt: known.endSeq)
        if let command = running, command.id == known.commandID { command.origin = origin }
        pump(origin)
        publishStatus()
        interpreter.updateReading()
    }

    private func remember(_ token: UInt64, _ record: InvokeToken) {
        if invokeTokens.updateValue(record, forKey: token) == nil { tokenOrder.append(token) }
        while tokenOrder.count > Self.rememberedTokens { invokeTokens[tokenOrder.removeFirst()] = nil }
    }

    private func start(_ request: InvokeRequest, from origin: Attachment, requestID: UInt32) {
        let id = nextCommandID
        nextCommandID += 1
        var feeder: StdinFeeder?
        var terminal: CommandTerminal?
        let transcriptLine: String?
        do {
            if let wanted = request.terminal {
                terminal = try CommandTerminal(reactor: reactor, request: wanted)
            }
            transcriptLine = try prepareCommand(request, id: id, from: origin,
                                                stdinName: request.stdin && terminal == nil ? workDirectory.stdinName(id) : nil,
                                                terminal: terminal)
            if request.stdin && terminal == nil {
                let fifo = try workDirectory.openStdinFIFO(commandID: id)
                feeder = StdinFeeder(reactor: reactor, path: fifo.path, fd: fifo.fd)
            }
        } catch {
            feeder?.close()
            terminal?.close()
            origin.peer.respond(channel: origin.channel, id: requestID, .failure(ErrorBody(.internal,
                "could not prepare the command in \(workDirectory.path): \(error)")))
            startNextWaiting()
            return
        }
        terminal?.output.mayRead = { [unowned self] in self.mayReadOutput() }
        let command = RunningCommand(id: id, origin: origin, stdin: feeder, token: request.token, terminal: terminal)
        if let token = request.token {
            remember(token, InvokeToken(commandID: id, startSeq: journal.lastSeq + 1, endSeq: nil))
        }
        command.transcriptLine = transcriptLine
        feeder?.onDrained = { [unowned self, weak command] in
            if let command { self.resumeStdinSender(of: command) }
        }
        running = command
        jobTable.commandStarting()
        lastUsedAt = WallClock.now()
        // The answer, the start record and — for a short command — its output and its end
        // leave in one write: one wake-up per hop and one SSH packet where there were
        // two. Held until the command ends, `startAnswerHold` at most.
        origin.peer.connection.holdWrites(for: Self.startAnswerHold)
        origin.peer.respond(channel: origin.channel, id: requestID, .started(commandID: id))
        // Output nobody acknowledged yet goes to this invoker first, unless a `receive`
        // is attached to show it (protocol.md, "Who gets live records").
        let receiverAttached = peers.values.contains { $0.attachments.values.contains { $0.receivesEverything } }
        endedCommands.removeAll { $0.records.upperBound <= journal.ackedSeq || !($0.origin?.isAttached ?? false) }
        origin.commandStarted(at: journal.lastSeq + 1, ackedSeq: receiverAttached ? journal.lastSeq : journal.ackedSeq,
                              except: endedCommands.map(\.records))
        command.startSeq = journal.lastSeq + 1
        emit(.commandStarted, body: Record.commandStarted(seq: 0, commandID: id).body)
        interpreter.runPreparedCommand(terminal: terminal?.output)
        publishStatus()
    }

    /// bash reported the running command's status and its output has been read.
    func commandFinished(status: Int32) {
        if shellOperationFinished(status: status) { return }
        endRunningCommand(status: status)
        if !startPendingJobs() && !snapshotAfterCommand() { startNextWaiting() }
        publishStatus()
    }

    private func endRunningCommand(status: Int32) {
        guard let command = running else { return }
        transcribeEnd(command, status: status)
        let ended = emit(.commandEnded, body: Record.commandEnded(seq: 0, commandID: command.id, exitStatus: status).body)
        command.origin?.commandEnded(at: ended.seq)
        if let origin = command.origin, command.startSeq > 0 {
            endedCommands.append(EndedCommand(records: command.startSeq...ended.seq, origin: origin))
        }
        if let token = command.token { invokeTokens[token]?.endSeq = ended.seq }
        command.origin?.peer.connection.releaseHeldWrites()
        resumeStdinSender(of: command)
        command.stdin?.close()  // and removes its FIFO
        command.terminal?.close()  // hangs the terminal up: bash has none until the next
        running = nil
        lastUsedAt = WallClock.now()
    }

    // MARK: Signals

    func signal(_ signal: Signal, from origin: Attachment, requestID: UInt32) {
        let peer = origin.peer
        switch signal {
        case .interrupt:
            switch life {
            case .closed(_, let reason):
                peer.respond(channel: origin.channel, id: requestID, .failure(ErrorBody(.sessionClosed, "the session is closed: \(reason)")))
                return
            case .broken(_, let reason):
                peer.respond(channel: origin.channel, id: requestID, .failure(ErrorBody(.sessionBroken, "the session is broken: \(reason)")))
                return
            case .running:
                // Between commands there is nothing to interrupt (and bash must not get it).
                if running != nil { interpreter.interrupt() }
            }
        case .terminate:
            terminateSession()
        }
        peer.respond(channel: origin.channel, id: requestID, .done)
    }

    func interruptFromRegistry() {
        if life == .running && running != nil { interpreter.interrupt() }
    }

    /// Ends bash and everything it started; its exit closes the session ("terminated").
    func terminateSession() {
        guard life == .running, !terminating else { return }
        terminating = true
        let refusal = ErrorBody(.sessionClosed, "the session was terminated before the command could start")
        for entry in waiting {
            if let timer = entry.timer { reactor.cancel(timer) }
            entry.origin.peer.respond(channel: entry.origin.channel, id: entry.requestID, .failure(refusal))
        }
        waiting.removeAll()
        interpreter.terminate()
    }

    // MARK: The end of bash

    func interpreterExited(_ status: ExitStatus) {
        guard life == .running else { return }
        guard interpreter.becameReady else {
            onStartFailure("bash \(status) before it was ready")
            return
        }
        endRunningCommand(status: status.shellStatus)
        if terminating {
            life = .closed(exitCode: status.shellStatus, reason: "terminated")
        } else if case .exited(let code) = status {
            life = .closed(exitCode: code, reason: "bash exited with status \(code)")
        } else {
            life = .broken(exitCode: status.shellStatus, reason: "bash was \(status)")
        }
        switch life {
        case .closed(let code, let reason):
            emit(.sessionClosed, body: Record.sessionClosed(seq: 0, exitCode: code, reason: reason).body)
        case .broken(_, let reason):
            emit(.sessionBroken, body: Record.sessionBroken(seq: 0, reason: reason).body)
        case .running:
            break
        }
        if let refusal = refusalForNewCommands() {
            for entry in waiting {
                if let timer = entry.timer { reactor.cancel(timer) }
                entry.origin.peer.respond(channel: entry.origin.channel, id: entry.requestID, .failure(refusal))
            }
        }
        waiting.removeAll()
        publishStatus()
        if shuttingDown { continueShutdown() }
    }
}
