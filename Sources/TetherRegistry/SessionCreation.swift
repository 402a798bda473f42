#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherConfiguration
import TetherIO
import TetherProtocol

extension Registry {
    /// `create`: validates, spawns a runspace host, and answers once it is ready and the
    /// control connection is up — without ever blocking the loop in between.
    func create(_ request: CreateRequest, for client: ClientIdentity, reply: @escaping (Response) -> Void) {
        let configuration = request.configuration ?? HostPolicy.defaultConfiguration
        let settings: SessionConfiguration
        switch configurationForNewSession(configuration) {
        case .failure(let refusal):
            reply(.failure(refusal))
            return
        case .success(let found):
            settings = found
        }
        let idleTimeout = request.idleTimeout ?? settings.idleTimeout.map { max($0, policy.minimumIdleTimeout) }
            ?? max(HostPolicy.defaultIdleTimeout, policy.minimumIdleTimeout)
        let bufferLimit = request.bufferLimit ?? HostPolicy.defaultBufferLimit
        let problems = [
            problem(withIdleTimeout: idleTimeout, maximum: settings.maxIdleTimeout, configuration: configuration),
            policy.problem(withBufferLimit: bufferLimit),
            request.name.flatMap { policy.problem(withName: $0) },
            request.jobLimit.flatMap { (1...JobLimits.maxConcurrent).contains($0) ? nil
                : "jobLimit must be between 1 and \(JobLimits.maxConcurrent), not \($0)" },
        ].compactMap { $0 }
        if let problem = problems.first {
            reply(.failure(ErrorBody(.badRequest, problem)))
            return
        }
        if let name = request.name, let clash = liveSession(named: name) {
            reply(.failure(ErrorBody(.badRequest,
                "a session named '\(name)' already exists on this host (instance id \(clash.instanceID)); choose another name or remove it first")))
            return
        }

        let now = WallClock.now()
        let id = UUID().uuidString.lowercased()
        var info = SessionInfo(
            instanceID: id, name: request.name ?? nextDefaultName(), configuration: configuration,
            state: .running,
            holder: Holder(clientID: client.clientID, clientHost: client.clientHost, since: now),
            busy: false, createdAt: now, lastUsedAt: now, idleTimeout: idleTimeout,
            outputBuffering: request.outputBuffering ?? settings.outputBuffering.flatMap(OutputBuffering.init(rawValue:))
                ?? HostPolicy.defaultOutputBuffering,
            bufferLimit: bufferLimit)
        info.jobLimit = request.jobLimit

        let launcher: RunspaceLauncher
        do {
            launcher = try RunspaceLauncher(reactor: reactor, paths: paths, session: info) { [weak self] report in
                self?.creationFinished(id, report, reply: reply)
            }
        } catch {
            log.write("could not spawn a runspace host for '\(info.name)': \(error)")
            reply(.failure(ErrorBody(.internal, "could not start a runspace host: \(error)")))
            return
        }
        info.runspacePID = launcher.pid
        let session = LiveSession(stored: StoredSession(info: info, attachments: 0), origin: .created)
        session.launcher = launcher
        starting[id] = session
        log.write("session \(id) '\(info.name)': starting runspace host pid \(launcher.pid) for client \(client.clientHost) (\(client.shortID))")
        saveNow()
    }

    private func creationFinished(_ id: String, _ report: ReadyPipe.Report, reply: (Response) -> Void) {
        guard let session = starting.removeValue(forKey: id) else { return }
        session.launcher = nil
        switch report {
        case .failed(let why):
            log.write("session \(id) '\(session.info.name)': runspace host failed to start: \(why)")
            saveNow()
            reply(.failure(ErrorBody(.unavailable, "could not start session '\(session.info.name)': \(why)")))
        case .ready:
            let control: RunspaceControl
            do {
                control = try RunspaceControl(reactor: reactor, paths: paths, instanceID: id, log: log)
            } catch {
                if let pid = session.info.runspacePID { kill(pid, SIGKILL) }
                log.write("session \(id) '\(session.info.name)': runspace said ok but can't be reached: \(error)")
                saveNow()
                reply(.failure(ErrorBody(.unavailable,
                    "session '\(session.info.name)' started but its runspace host can't be reached: \(error)")))
                return
            }
            sessions[id] = session
            attachControl(control, to: session)
            // Fresh from "ok": nobody attached, nothing running — idle from now on,
            // whether or not a status event confirms it.
            session.statusKnown = true
            session.info.lastUsedAt = WallClock.now()
            rescheduleIdleTimer(session)
            log.write("session \(id) '\(session.info.name)': running")
            saveNow()
            reply(.session(session.info))
        }
    }

    /// "Session<N>" with the next N no live session is named already.
    private func nextDefaultName() -> String {
        while true {
            let name = "Session\(nextSessionNumber)"
            nextSessionNumber += 1
            if liveSession(named: name) == nil { return name }
        }
    }

    /// A running or starting session with exactly this name.
    func liveSession(named name: String) -> LiveSession? {
        (Array(sessions.values) + Array(starting.values))
            .first { $0.info.name == name && $0.info.state == .running }
    }
}
