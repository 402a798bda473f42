import Glibc
import TetherIO
import TetherProtocol

/// The end of the process: on the registry's `signal terminate` (remove, idle timeout) or
/// our own SIGTERM. bash's group gets SIGTERM, then SIGKILL after a grace; the last records
/// and answers are flushed; the socket and the work directory are removed; then exit.
extension Session {
    /// How long shutting down may take at most, whatever is stuck.
    static let shutdownDeadline: Double = BashInterpreter.terminationGrace + 3

    func shutDown(reason: String) {
        guard !shuttingDown else { return }
        shuttingDown = true
        listener?.close()  // refuse new connections; removes the socket file
        listener = nil
        interpreter.updateReading()  // nothing holds output back any more
        terminateJobs()
        if life == .running {
            terminateSession()
        } else if !interpreter.groupIsEmpty {
            interpreter.terminate()  // background jobs outliving bash
        }
        reactor.schedule(after: Session.shutdownDeadline) { [unowned self] in self.exitProcess() }
        continueShutdown()
    }

    /// Moves the shutdown on as far as it can go now.
    func continueShutdown() {
        guard shuttingDown, life != .running else { return }
        // Members of bash's group that outlived it get the rest of their grace.
        guard groupKilled || interpreter.groupIsEmpty else { return }
        for peer in peers.values { peer.connection.closeAfterFlush() }
        if peers.isEmpty { exitProcess() }
    }

    func exitProcess() -> Never {
        interpreter.killGroup()
        killJobGroups()
        listener?.close()
        unlink(options.paths.runspaceSocket(options.instanceID))
        workDirectory.removeAll()
        exit(0)
    }
}
