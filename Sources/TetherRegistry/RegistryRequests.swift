import Glibc
import TetherIO
import TetherProtocol

extension Registry {
    /// Answers one channel-0 request from a subsystem. `reply` is called exactly once,
    /// possibly later (create waits for the runspace).
    func handle(_ request: Request, from client: ClientIdentity, reply: @escaping (Response) -> Void) {
        switch request {
        case .create(let details):
            create(details, for: client, reply: reply)
        case .list(let filter):
            reply(.sessions(list(filter)))
        case .claim(let instanceID, let force):
            reply(claim(instanceID, force: force, for: client))
        case .release(let instanceID, let idleTimeout, let outputBuffering):
            reply(release(instanceID, idleTimeout: idleTimeout, outputBuffering: outputBuffering, for: client))
        case .remove(let instanceID, let force):
            reply(remove(instanceID, force: force ?? false, for: client))
        case .ping:
            reply(.pong)
        case .configurations:
            reply(.configurations(usableConfigurations()))
        case .attach, .detach, .invoke, .signal, .configure, .describe, .resize:
            reply(.failure(ErrorBody(.badRequest,
                "the registry does not serve '\(request.kindName)' requests: they go on an attached channel to the session's runspace")))
        case .jobs, .jobStart, .jobList, .jobReceive, .jobWait, .jobStop, .jobRemove:
            reply(.failure(ErrorBody(.badRequest,
                "the registry does not serve '\(request.kindName)' requests: they go on a channel bound to a session's jobs")))
        case .restoreSocket:
            reply(.failure(ErrorBody(.badRequest,
                "the registry does not serve 'restoreSocket' requests: it sends them to its runspaces")))
        }
    }

    // MARK: list

    func list(_ filter: SessionFilter) -> [SessionInfo] {
        let matches = { (info: SessionInfo) -> Bool in
            if let pattern = filter.name, fnmatch(pattern, info.name, 0) != 0 { return false }
            if let id = filter.instanceID, id.lowercased() != info.instanceID { return false }
            if let state = filter.state, state != info.state { return false }
            if let configuration = filter.configuration, configuration != info.configuration { return false }
            return true
        }
        let found = sessions.values.map(\.info).filter(matches).sorted { $0.createdAt < $1.createdAt }
        if found.isEmpty, filter.instanceID != nil {
            // Asked about one session that is gone: say why rather than nothing.
            return tombstones.map(\.asSessionInfo).filter(matches)
        }
        return found
    }

    // MARK: claim

    func claim(_ instanceID: String, force: Bool, for client: ClientIdentity) -> Response {
        let session: LiveSession
        switch lookup(instanceID) {
        case .failure(let error): return .failure(error)
        case .success(let found): session = found
        }
        // A closed or broken session whose runspace still lives can be attached to read
        // its last output; one whose runspace is gone cannot.
        if session.info.state != .running && !session.runspaceIsAlive {
            return .failure(notUsable(session))
        }
        let now = WallClock.now()
        if let holder = session.info.holder, holder.clientID != client.clientID {
            guard force else { return .failure(heldElsewhere(session, holder: holder, hint: "use --force to take it over")) }
            let taker = Holder(clientID: client.clientID, clientHost: client.clientHost, since: now)
            session.info.holder = taker
            session.control?.notifyTakenOver(by: taker)
            log.write("session \(session.instanceID) '\(session.info.name)': taken over by \(client.clientHost) (\(client.shortID)) from \(holder.clientHost) (\(holder.clientID.prefix(8)))")
            saveNow()
        } else if session.info.holder == nil {
            session.info.holder = Holder(clientID: client.clientID, clientHost: client.clientHost, since: now)
            log.write("session \(session.instanceID) '\(session.info.name)': claimed by \(client.clientHost) (\(client.shortID))")
            saveNow()
        }
        if session.info.state == .running, session.info.reason != nil {
            // A recovered session's note ("who held it is not known") is answered now.
            session.info.reason = nil
            saveSoon()
        }
        return .session(session.info)
    }

    // MARK: release

    func release(_ instanceID: String, idleTimeout: Double?, outputBuffering: OutputBuffering?,
                 for client: ClientIdentity) -> Response {
        let session: LiveSession
        switch lookup(instanceID) {
        case .failure(let error): return .failure(error)
        case .success(let found): session = found
        }
        if let holder = session.info.holder, holder.clientID != client.clientID {
            return .failure(heldElsewhere(session, holder: holder, hint: "only that client can disconnect it"))
        }
        if let idleTimeout, let problem = problem(withIdleTimeout: idleTimeout,
                                                  maximum: maximumIdleTimeout(ofConfiguration: session.info.configuration),
                                                  configuration: session.info.configuration) {
            return .failure(ErrorBody(.badRequest, problem))
        }
        let newIdleTimeout = idleTimeout.flatMap { $0 != session.info.idleTimeout ? $0 : nil }
        let newBuffering = outputBuffering.flatMap { $0 != session.info.outputBuffering ? $0 : nil }
        if let newIdleTimeout { session.info.idleTimeout = newIdleTimeout }
        if let newBuffering { session.info.outputBuffering = newBuffering }
        if newIdleTimeout != nil || newBuffering != nil {
            session.control?.configure(outputBuffering: newBuffering, bufferLimit: nil, idleTimeout: newIdleTimeout)
        }
        if session.info.holder != nil {
            log.write("session \(session.instanceID) '\(session.info.name)': released by \(client.clientHost) (\(client.shortID))")
        }
        session.info.holder = nil
        saveNow()
        rescheduleIdleTimer(session)
        return .session(session.info)
    }

    // MARK: remove

    /// The same rule as `claim`: a session another client holds is ended only with
    /// `force`. Attached channels are told who removed it before the runspace ends.
    func remove(_ instanceID: String, force: Bool, for client: ClientIdentity) -> Response {
        switch lookup(instanceID) {
        case .failure(let error):
            return .failure(error)
        case .success(let session):
            if let holder = session.info.holder, holder.clientID != client.clientID, !force {
                return .failure(heldElsewhere(session, holder: holder, hint: "use --force to remove it anyway"))
            }
            session.control?.notifyRemoved(by: Holder(clientID: client.clientID, clientHost: client.clientHost,
                                                      since: WallClock.now()))
            terminateAndForget(session, why: "removed by client \(client.clientHost) (\(client.shortID))")
            return .done
        }
    }

    // MARK: Helpers

    /// The session with this id, or the error that explains why there is none.
    func lookup(_ instanceID: String) -> Result<LiveSession, ErrorBody> {
        let id = instanceID.lowercased()
        if let session = sessions[id] { return .success(session) }
        if let session = starting[id] {
            return .failure(ErrorBody(.unavailable, "session '\(session.info.name)' is still starting; try again in a moment"))
        }
        if let tombstone = tombstones.last(where: { $0.instanceID == id }) {
            return .failure(ErrorBody(.sessionClosed, "session '\(tombstone.name)' (\(id)) was \(tombstone.reason)"))
        }
        return .failure(ErrorBody(.notFound, "no session with instance id \(instanceID) on this host"))
    }

    private func notUsable(_ session: LiveSession) -> ErrorBody {
        let reason = session.info.reason.map { ": \($0)" } ?? ""
        if session.info.state == .closed {
            return ErrorBody(.sessionClosed, "session '\(session.info.name)' is closed\(reason)")
        }
        return ErrorBody(.sessionBroken, "session '\(session.info.name)' is broken\(reason)")
    }

    private func heldElsewhere(_ session: LiveSession, holder: Holder, hint: String) -> ErrorBody {
        ErrorBody(.heldElsewhere,
                  "session '\(session.info.name)' is held by client \(holder.clientHost) (\(holder.clientID.prefix(8))) since \(WallClock.format(holder.since)); \(hint)")
    }
}
