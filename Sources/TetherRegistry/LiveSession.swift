import TetherIO
import TetherProtocol

/// Who asks: the client behind a subsystem connection, from that connection's hello.
struct ClientIdentity: Equatable {
    var clientID: String
    var clientHost: String

    /// A short form of the client id for messages ("held by client web1 (3f2a9c1e)").
    var shortID: String { String(clientID.prefix(8)) }
}

/// One session as the registry sees it while running: the durable row plus what only
/// matters in memory (the control connection, the idle timer, how it was started).
final class LiveSession {
    var stored: StoredSession
    /// Open while the runspace host lives; its closing is how we learn it died.
    var control: RunspaceControl?
    /// Set while a freshly spawned runspace hasn't said "ok" yet.
    var launcher: RunspaceLauncher?
    var idleTimer: TimerHandle?
    /// False until the first status event: before it, attachments and busy are guesses.
    var statusKnown = false
    /// How this registry came to know it: created here, or adopted from the table.
    let origin: Origin

    enum Origin {
        case created
        /// `activeWhenSaved`: the table said it was in use; its idle clock restarts.
        case adopted(activeWhenSaved: Bool)
    }

    init(stored: StoredSession, origin: Origin) {
        self.stored = stored
        self.origin = origin
    }

    var info: SessionInfo {
        get { stored.info }
        set { stored.info = newValue }
    }

    var instanceID: String { stored.info.instanceID }

    var runspaceIsAlive: Bool { control?.isOpen ?? false }

    /// Nobody attached and nothing running, as far as the runspace last told us.
    var isIdle: Bool { statusKnown && stored.attachments == 0 && !stored.info.busy }
}
