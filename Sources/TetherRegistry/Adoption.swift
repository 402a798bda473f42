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
}
