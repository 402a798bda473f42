import TetherIO
import TetherSSH

/// Passphrases can't be typed into a keeper (it has no terminal): answer "none" and
/// remember that one was wanted, so a failed login becomes "connect directly" (the CLI
/// can ask) rather than an error.
final class PassphraseWanted: PassphraseProvider, @unchecked Sendable {
    private let lock = Lock()
    private var asked = false  // guarded by lock

    func passphrase(for keyPath: String) -> String? {
        lock.withLock { asked = true }
        return nil
    }

    var wasAsked: Bool { lock.withLock { asked } }
}
