import TetherIO
import TetherSSH

/// Passphrases can't be typed into a keeper (it has no terminal): answer with what the CLI
/// sent (the person typed it there), else "none" and remember which key wanted one, so a
/// failed login becomes "ask at the CLI and open again" rather than an error. What was
/// given is forgotten once the link has logged in (`forget`). Password and
/// keyboard-interactive questions likewise: answered from what the CLI sent, else kept for
/// the CLI to ask (`loginQuestion`) while the login stops (`LoginRelay.swift`).
final class PassphraseWanted: PassphraseProvider, HostKeyQuestion, LoginPrompter, @unchecked Sendable {
    private let lock = Lock()
    private var asked = false  // guarded by lock
    private var hostKeyQuestion = false  // guarded by lock
    private var given: [String: String]  // guarded by lock
    private var keys: [String] = []  // guarded by lock

    private var logins: KeeperLoginAnswers  // guarded by lock

    init(given: [String: String] = [:], logins: LoginAnswers? = nil) {
        self.given = given
        self.logins = KeeperLoginAnswers(logins)
    }

    func attemptsSpent(_ method: LoginQuestion.Method) -> Int {
        lock.withLock { logins.attemptsSpent(method) }
    }

    /// The CLI decides whether a person is there to ask.
    var canAsk: Bool { true }

    func answer(_ question: LoginQuestion) -> LoginAnswer {
        lock.withLock {
            // A key's passphrase first: ssh would have asked it before any password.
            if !keys.isEmpty { return .elsewhere }
            return logins.answer(question)
        }
    }

    /// The password or keyboard-interactive question only the CLI's person can answer.
    var loginQuestion: LoginQuestion? { lock.withLock { logins.question } }

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
        lock.withLock {
            given = [:]
            logins.forget()
        }
    }

    /// StrictHostKeyChecking ask met an unknown key: only the CLI, on its terminal, can ask.
    func confirm(_ question: String, fingerprint: String) -> Bool? {
        lock.withLock { hostKeyQuestion = true }
        return nil
    }

    var wasAsked: Bool { lock.withLock { asked } }
    var wasAskedAboutHostKey: Bool { lock.withLock { hostKeyQuestion } }
}
