import TetherIO
import TetherSSH

/// Passphrases can't be typed into a keeper (it has no terminal): answer "none" and
/// remember that one was wanted, so a failed login becomes "connect directly" (the CLI
/// can ask) rather than an error.
final class PassphraseWanted: PassphraseProvider, HostKeyQuestion, @unchecked Sendable {
    private let lock = Lock()
    private var asked = false  // guarded by lock
    private var hostKeyQuestion = false  // guarded by lock

    func passphrase(for keyPath: String) -> String? {
        lock.withLock { asked = true }
        return nil
    }

    /// StrictHostKeyChecking ask met an unknown key: only the CLI, on its terminal, can ask.
    func confirm(_ question: String, fingerprint: String) -> Bool? {
        lock.withLock { hostKeyQuestion = true }
        return nil
    }

    var wasAsked: Bool { lock.withLock { asked } }
    var wasAskedAboutHostKey: Bool { lock.withLock { hostKeyQuestion } }
}
