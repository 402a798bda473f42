import Glibc
import TetherIO
import TetherProtocol

extension Registry {
    /// Takes a row from the saved table back under management. A running session's
    /// runspace is reconnected; if its socket is gone or refuses, the runspace died while
    /// no registry watched it (killed, or the host rebooted and /tmp was emptied).
    func adopt(_ stored: StoredSession) {
        var stored = stored
        stored.info.instanceID = stored.info.instanceID.lowercased()
        let id = stored.info.instanceID
        let wasActive = stored.attachments > 0 || stored.info.busy
        let session = LiveSession(stored: stored, origin: .adopted(activeWhenSaved: wasActive))
        sessions[id] = session
        guard stored.info.state == .running else {
            // Closed or broken rows stay as they are, for clients to read the reason.
            return
        }
        do {
            let control = try RunspaceControl(reactor: reactor, paths: paths, instanceID: id, log: log)
            attachControl(control, to: session)
            log.write("session \(id) '\(stored.info.name)': re-adopted its runspace host")
        } catch let error as SystemError where error.errno == ENOENT || error.errno == ECONNREFUSED {
            markBroken(session, reason: "runspace host is gone (it was killed, or the host rebooted)")
            log.write("session \(id) '\(stored.info.name)': runspace host is gone (\(error))")
        } catch {
            markBroken(session, reason: "runspace host could not be reached: \(error)")
            log.write("session \(id) '\(stored.info.name)': runspace host could not be reached: \(error)")
        }
    }

    /// How long recovery waits for runspaces to describe themselves (a stopped one never
    /// will; it is left for the next registry start).
    static let recoveryTimeout: Double = 3

    /// Finds runspaces the table doesn't name — the table was deleted, damaged, or is older
    /// than they are — by their sockets in `<runtime>/sessions`, and asks each who it is
    /// (`describe`). Each that answers is adopted as the session it says it is, free unless
    /// a client is attached to it now, with a fresh idle period and a `reason` telling
    /// clients it was recovered. `done` runs on the loop when all answered or the time is up.
    func recoverUnlisted(why: String, done: @escaping () -> Void) {
        let known = Set(sessions.keys).union(starting.keys)
        let candidates = Self.socketInstanceIDs(in: paths.sessionsDirectory).filter { !known.contains($0) }
        guard !candidates.isEmpty else { return done() }
        recoveryDone = done
        for id in candidates {
            let control: RunspaceControl
            do {
                control = try RunspaceControl(reactor: reactor, paths: paths, instanceID: id, log: log)
            } catch {
                // A socket a dead runspace left behind: nothing to recover.
                log.write("runspace socket for \(id) left by a runspace host that is gone (\(error)); not recovered")
                continue
            }
            var lastStatus: RunspaceStatus?
            control.onStatus = { lastStatus = $0 }
            control.onLost = { [weak self] _, reason in
                guard let self, self.recovering.removeValue(forKey: id) != nil else { return }
                self.log.write("runspace host \(id) went away before describing itself (\(reason)); not recovered")
                self.finishRecoveryIfDone()
            }
            control.onDescribed = { [weak self, weak control] info in
                guard let self, let control, self.recovering.removeValue(forKey: id) != nil else { return }
                self.recovered(info, control: control, status: lastStatus, why: why)
                self.finishRecoveryIfDone()
            }
            recovering[id] = control
            control.start()
            control.describe()
        }
        guard !recovering.isEmpty else {
            recoveryDone = nil
            return done()
        }
        reactor.schedule(after: Self.recoveryTimeout) { [weak self] in
            guard let self, !self.recovering.isEmpty else { return }
            for (id, control) in self.recovering {
                self.log.write("runspace host \(id) did not describe itself within \(Int(Self.recoveryTimeout))s; not recovered now")
                control.onLost = { _, _ in }
                control.close()
            }
            self.recovering.removeAll()
            self.finishRecoveryIfDone()
        }
    }

    private func recovered(_ described: SessionInfo, control: RunspaceControl, status: RunspaceStatus?, why: String) {
        let id = control.instanceID
        var info = described
        info.instanceID = id
        info.protocolVersion = control.protocolVersion
        if !(info.idleTimeout > 0) { info.idleTimeout = max(HostPolicy.defaultIdleTimeout, policy.minimumIdleTimeout) }
        let now = WallClock.now()
        info.lastUsedAt = now
        let holderNote = info.holder.map { "held by \($0.clientHost), attached now" }
            ?? "who held it is not known, so it is free to connect"
        info.reason = "recovered from its runspace host at \(WallClock.format(now)): \(why); \(holderNote)"
        // A fresh idle period: nothing says how long it has been idle.
        let session = LiveSession(stored: StoredSession(info: info, attachments: status?.attachments ?? 0),
                                  origin: .adopted(activeWhenSaved: true))
        sessions[id] = session
        wire(control, to: session)
        if let number = Int(info.name.dropFirst("Session".count)), info.name.hasPrefix("Session") {
            nextSessionNumber = max(nextSessionNumber, number + 1)
        }
        log.write("session \(id) '\(info.name)': recovered from its runspace host (\(why)); \(holderNote)")
        if let status { apply(status, toSessionWithID: id) } else { rescheduleIdleTimer(session) }
    }

    private func finishRecoveryIfDone() {
        guard recovering.isEmpty, let done = recoveryDone else { return }
        recoveryDone = nil
        saveNow()
        done()
    }

    /// Instance ids of the `<id>.sock` files in the sessions directory.
    static func socketInstanceIDs(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var ids: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".sock") else { continue }
            let id = String(name.dropLast(".sock".count)).lowercased()
            // Ours are UUIDs: 36 characters of hex digits and dashes.
            guard id.count == 36, id.allSatisfy({ $0.isHexDigit || $0 == "-" }) else { continue }
            ids.append(id)
        }
        return ids.sorted()
    }
}
