import TetherIO
import TetherSSH

/// Passphrases can't be typed into a keeper (it has no terminal): answer with what the CLI
/// sent (the person typed it there), else "none" and remember which key wanted one, so a
/// failed login becomes "ask at the CLI and open again" rather than an error. What was
/// given is forgotten once the link has logged in (`forget`).
final class PassphraseWanted: PassphraseProvider, HostKeyQuestion, @unchecked Sendable {
    private let lock = Lock()
    private var asked = false  // guarded by lock
    private var hostKeyQuestion = false  // guarded by lock
    private var given: [String: String]  // guarded by lock
    private var keys: [String] = []  // guarded by lock

    init(given: [String: String] = [:]) {
        self.given = given
    }

    func passphrase(for keyPath: String) -> String? {
        lock.withLock {
            if let known = given[keyPath] { return known }
            asked = true
            if !keys.contains(keyPath) { keys.append(keyPath) }
            return nil
        }
    }

    /// The keys that wanted a passphrase nobody gave.
    var keysAsked: [String] { lock.withLock { keys } }

    func forget() {
        lock.withLock { given = [:] }
    }

    /// StrictHostKeyChecking ask met an unknown key: only the CLI, on its terminal, can ask.
    func confirm(_ question: String, fingerprint: String) -> Bool? {
        lock.withLock { hostKeyQuestion = true }
        return nil
    }

    var wasAsked: Bool { lock.withLock { asked } }
    var wasAskedAboutHostKey: Bool { lock.withLock { hostKeyQuestion } }
}
