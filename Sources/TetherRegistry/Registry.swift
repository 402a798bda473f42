import Glibc
import TetherIO
import TetherProtocol

/// The session table and everything that changes it. Confined to the Reactor's thread.
///
/// Sessions live in `sessions` once their runspace said "ok"; while starting they are in
/// `starting` — already saved to disk (so a registry crash mid-start re-adopts instead of
/// orphaning the runspace) but not listed. Removed sessions whose runspace is still
/// shutting down wait in `departing` until their control connection closes.
final class Registry {
    let reactor: Reactor
    let paths: HostPaths
    let log: HostLog
    let policy: HostPolicy
    private let store: SessionTableStore
    /// Runspaces found by their sockets, asked `describe`, not answered yet.
    var recovering: [String: RunspaceControl] = [:]
    var recoveryDone: (() -> Void)?

    var sessions: [String: LiveSession] = [:]
    var starting: [String: LiveSession] = [:]
    var departing: [String: RunspaceControl] = [:]
    var tombstones: [Tombstone] = []
    var nextSessionNumber = 1
    private var saveTimer: TimerHandle?

    /// A terminated runspace that hasn't gone within this long is killed.
    static let terminateGrace: Double = 10
    /// Saves of mere bookkeeping (a session going idle) are batched this long.
    static let lazySaveDelay: Double = 1

    init(reactor: Reactor, paths: HostPaths, log: HostLog, policy: HostPolicy) {
        self.reactor = reactor
        self.paths = paths
        self.log = log
        self.policy = policy
        self.store = SessionTableStore(path: paths.sessionTableFile)
    }

    // MARK: Persistence

    /// Loads the table and re-adopts every session that was running; then asks every
    /// runspace socket the table doesn't name who it is (`recoverUnlisted`), and calls
    /// `done` on the loop once they answered — at once if there are none.
    func loadAndAdopt(done: @escaping () -> Void) {
        let tableLoss: String?
        switch store.load() {
        case .missing:
            log.write("no session table yet at \(paths.sessionTableFile)")
            tableLoss = "the session table \(paths.sessionTableFile) was missing"
        case .unreadable(let why, let movedTo):
            log.write("session table \(paths.sessionTableFile) is unreadable (\(why)); kept as \(movedTo ?? "-"); starting empty")
            tableLoss = "the session table was damaged (kept as \(movedTo ?? "-"))"
        case .loaded(let table):
            nextSessionNumber = table.nextSessionNumber
            tombstones = table.tombstones
            for stored in table.sessions {
                adopt(stored)
            }
            tableLoss = nil
        }
        saveNow()
        recoverUnlisted(why: tableLoss ?? "the session table did not list it", done: done)
    }

    /// Writes the table now: for changes a crash must not lose (creation, ownership,
    /// settings, life state).
    func saveNow() {
        if let saveTimer { reactor.cancel(saveTimer) }
        saveTimer = nil
        let now = WallClock.now()
        tombstones.removeAll { now - $0.removedAt > Tombstone.keepSeconds }
        let rows = (Array(sessions.values) + Array(starting.values))
            .map(\.stored)
            .sorted { $0.info.createdAt < $1.info.createdAt }
        let table = SessionTable(nextSessionNumber: nextSessionNumber, sessions: rows, tombstones: tombstones)
        do {
            try store.save(table)
        } catch {
            log.write("could not save the session table: \(error)")
        }
    }

    /// Writes the table soon: for bookkeeping where losing the last second is harmless.
    func saveSoon() {
        guard saveTimer == nil else { return }
        saveTimer = reactor.schedule(after: Registry.lazySaveDelay) { [weak self] in
            self?.saveTimer = nil
            self?.saveNow()
        }
    }

    // MARK: Runspace control

    /// Wires a control connection's events into the table and starts it.
    func attachControl(_ control: RunspaceControl, to session: LiveSession) {
        wire(control, to: session)
        control.start()
    }

    /// Routes a control connection's events to `session` (started or not).
    func wire(_ control: RunspaceControl, to session: LiveSession) {
        let id = session.instanceID
        session.control = control
        control.onStatus = { [weak self] status in self?.apply(status, toSessionWithID: id) }
        control.onLost = { [weak self] expected, why in self?.controlLost(id, expected: expected, why: why) }
    }

    func apply(_ status: RunspaceStatus, toSessionWithID id: String) {
        guard let session = sessions[id] else { return }
        guard status.instanceID.lowercased() == id else {
            log.write("session \(id): ignoring a status event for \(status.instanceID)")
            return
        }
        let wasIdle = session.isIdle
        let firstStatus = !session.statusKnown
        session.statusKnown = true
        if firstStatus, let version = session.control?.protocolVersion, session.info.protocolVersion != version {
            // What the subsystem checks a client's requests against (an earlier release's
            // runspace speaks an earlier version); absent, it assumes the oldest.
            session.info.protocolVersion = version
            if version < tetherProtocolVersion {
                log.write("session \(id) '\(session.info.name)': runspace host \(session.control?.software ?? "") speaks protocol \(version); serving it as it is")
            }
        }
        if firstStatus, case .adopted = session.origin {
            // It answered our hello: tell it its idle timeout, which a runspace started by
            // an older registry wasn't given, so it can describe itself if the table is lost.
            session.control?.configure(outputBuffering: nil, bufferLimit: nil, idleTimeout: session.info.idleTimeout)
        }
        session.stored.attachments = status.attachments
        session.info.busy = status.busy
        session.info.runspacePID = status.pid
        let now = WallClock.now()

        if status.state != .running {
            let changed = session.info.state != status.state
            session.info.state = status.state
            session.info.reason = status.reason
            session.info.exitCode = status.exitCode
            session.info.busy = false
            if changed {
                session.info.lastUsedAt = now
                log.write("session \(id) '\(session.info.name)' is \(status.state.rawValue): \(status.reason ?? "no reason given")")
                saveNow()
            }
            rescheduleIdleTimer(session)
            return
        }

        if firstStatus {
            // The idle clock restarts unless the table proves the session has been idle
            // since `lastUsedAt` (adopted, idle when saved, idle now).
            if case .adopted(activeWhenSaved: false) = session.origin, session.isIdle {
            } else {
                session.info.lastUsedAt = now
            }
            saveSoon()
        } else if wasIdle != session.isIdle {
            session.info.lastUsedAt = now
            // Becoming active must be on disk before a crash could make us time it out
            // early; becoming idle can wait a moment.
            if session.isIdle { saveSoon() } else { saveNow() }
        }
        rescheduleIdleTimer(session)
    }

    private func controlLost(_ id: String, expected: Bool, why: String) {
        if let control = departing.removeValue(forKey: id) {
            _ = control
            log.write("session \(id): runspace host has ended")
            return
        }
        guard let session = sessions[id] else { return }
        let refusedVersion = session.control?.refusedVersion
        session.control = nil
        if let refusedVersion, session.info.state == .running {
            markBroken(session, reason: "its runspace host is from a Tether release that shares no protocol version with this one (\(refusedVersion)); it keeps running unreachable until `tether remove` ends it")
            log.write("session \(id) '\(session.info.name)': runspace host speaks another protocol version: \(refusedVersion)")
            saveNow()
        } else if !expected && session.info.state == .running {
            markBroken(session, reason: "runspace host died unexpectedly")
            log.write("session \(id) '\(session.info.name)': runspace host died unexpectedly (\(why))")
            saveNow()
        }
        rescheduleIdleTimer(session)
    }

    func markBroken(_ session: LiveSession, reason: String) {
        session.info.state = .broken
        session.info.reason = reason
        session.info.busy = false
        session.stored.attachments = 0
        session.info.lastUsedAt = WallClock.now()
    }

    /// Ends a session: orders its runspace to terminate (killing it if it hasn't gone
    /// after a grace period) and drops it from the table.
    func terminateAndForget(_ session: LiveSession, why: String) {
        let id = session.instanceID
        sessions[id] = nil
        if let timer = session.idleTimer { reactor.cancel(timer) }
        session.idleTimer = nil
        if let control = session.control, control.isOpen {
            control.terminate()
            departing[id] = control
            let pid = session.info.runspacePID
            reactor.schedule(after: Registry.terminateGrace) { [weak self] in
                guard let self, let control = self.departing.removeValue(forKey: id) else { return }
                // Still connected, so the process is still the runspace we spawned.
                if let pid, pid > 0 {
                    kill(pid, SIGKILL)
                    self.log.write("session \(id): runspace host (pid \(pid)) ignored terminate for \(Int(Registry.terminateGrace))s; killed it")
                }
                control.close()
            }
        }
        if session.control?.isOpen != true, let pid = session.info.runspacePID, pid > 0,
           RunspaceProcess.isRunspace(pid: pid, instanceID: id) {
            // Unreachable but alive (a runspace of another release): end it by signal.
            kill(pid, SIGTERM)
            log.write("session \(id): sent SIGTERM to its unreachable runspace host (pid \(pid))")
        }
        session.control = nil
        log.write("session \(id) '\(session.info.name)' removed: \(why)")
        saveNow()
    }

    // MARK: Idle timeouts

    /// One timer per idle session on the Reactor: armed when the session becomes idle,
    /// cancelled when it is used again. Nothing polls.
    func rescheduleIdleTimer(_ session: LiveSession) {
        if let timer = session.idleTimer { reactor.cancel(timer) }
        session.idleTimer = nil
        guard session.runspaceIsAlive, session.isIdle else { return }
        let deadline = session.info.lastUsedAt + session.info.idleTimeout
        let id = session.instanceID
        session.idleTimer = reactor.schedule(after: max(0, deadline - WallClock.now())) { [weak self] in
            self?.idleTimeoutExpired(id)
        }
    }

    private func idleTimeoutExpired(_ id: String) {
        guard let session = sessions[id] else { return }
        session.idleTimer = nil
        guard session.runspaceIsAlive, session.isIdle else { return }
        let now = WallClock.now()
        let reason = "removed after idle timeout of \(HostPolicy.seconds(session.info.idleTimeout)) at \(WallClock.format(now))"
        tombstones.append(Tombstone(instanceID: id, name: session.info.name,
                                    configuration: session.info.configuration,
                                    createdAt: session.info.createdAt, removedAt: now, reason: reason))
        terminateAndForget(session, why: reason)
    }

    // MARK: Shutdown

    func shutdown() {
        saveNow()
    }

    /// Nothing in flight that only this image knows about: no runspace starting, being
    /// removed or being recovered (a hand-over to a new image waits for this).
    var isQuiet: Bool { starting.isEmpty && departing.isEmpty && recovering.isEmpty }
}
