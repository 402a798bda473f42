import Glibc
import TetherIO

/// What password or keyboard-interactive authentication asks a person: ssh's own
/// question ("user@host's password: "), or the server's prompts (PAM's "Password: ", a
/// one-time code…).
public struct LoginQuestion: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable {
        case password
        case keyboardInteractive = "keyboard-interactive"
    }

    public struct Prompt: Codable, Sendable, Equatable {
        public var text: String
        /// The answer may be shown as it is typed (a user name, not a password).
        public var echo: Bool

        public init(text: String, echo: Bool) {
            self.text = text
            self.echo = echo
        }
    }

    public var method: Method
    /// "user@host", as ssh names the login in its prompts.
    public var login: String
    /// keyboard-interactive's name and instruction lines (often empty).
    public var name: String
    public var instruction: String
    public var prompts: [Prompt]
    /// 1 the first time the method asks, 2 and on after the server refused an answer
    /// (NumberOfPasswordPrompts bounds it).
    public var attempt: Int

    public init(method: Method, login: String, name: String = "", instruction: String = "",
                prompts: [Prompt], attempt: Int) {
        self.method = method
        self.login = login
        self.name = name
        self.instruction = instruction
        self.prompts = prompts
        self.attempt = attempt
    }
}

public enum LoginAnswer: Sendable, Equatable {
    /// One answer per prompt.
    case answers([String])
    /// Nobody can answer (no terminal, no askpass, the person gave up): the method is
    /// skipped, as ssh skips it.
    case unanswerable
    /// Only someone elsewhere can answer (the keeper's CLI, at its terminal): the login
    /// stops at once, sending the server nothing, and fails as `authenticationFailed`;
    /// the prompter keeps the question for whoever can ask it.
    case elsewhere
}

/// Answers password and keyboard-interactive questions. Never from argv or the
/// environment; answers are used for one login and not kept by the connection.
public protocol LoginPrompter: Sendable {
    /// Whether anyone could be asked at all; false skips the interactive methods without
    /// starting them (a keyboard-interactive exchange, once started, must be answered).
    var canAsk: Bool { get }
    func answer(_ question: LoginQuestion) -> LoginAnswer
    /// Attempts of `method` the server refused before this connection (a keeper link
    /// continuing a person's earlier answers): they count against NumberOfPasswordPrompts.
    func attemptsSpent(_ method: LoginQuestion.Method) -> Int
}

extension LoginPrompter {
    public func attemptsSpent(_ method: LoginQuestion.Method) -> Int { 0 }
}

/// Seconds this process has spent waiting for a person to answer a prompt (passphrase,
/// password, host key): connection deadlines don't count them.
public enum PersonWait {
    private static let lock = Lock()
    nonisolated(unsafe) private static var nanoseconds: UInt64 = 0  // guarded by lock

    public static var seconds: Double { lock.withLock { Double(nanoseconds) / 1e9 } }

    static func measure<T>(_ body: () -> T) -> T {
        let started = Reactor.now()
        defer {
            let spent = Reactor.now() &- started
            lock.withLock { nanoseconds &+= spent }
        }
        return body()
    }
}

/// Asks on /dev/tty with ssh's words — "user@host's password: ", or each of the server's
/// prompts as "(user@host) Password: " after its name and instruction lines — or through
/// `$SSH_ASKPASS` under the rules `SSH_ASKPASS_REQUIRE` sets (as for passphrases).
/// "Permission denied, please try again." before asking a password again, as ssh says.
public struct TTYLoginPrompter: LoginPrompter {
    public init() {}

    public var canAsk: Bool {
        let tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        if tty >= 0 {
            defer { close(tty) }
            var mode = termios()
            if tcgetattr(tty, &mode) == 0 { return true }
        }
        return TTYPassphraseProvider.askpassProgram(forTerminal: false) != nil
    }

    public func answer(_ question: LoginQuestion) -> LoginAnswer {
        if question.method == .password && question.attempt > 1 {
            SSHNotice.printPlain("Permission denied, please try again.")
        }
        for line in [question.name, question.instruction] where !line.isEmpty {
            SSHNotice.printPlain(line.hasSuffix("\n") ? String(line.dropLast()) : line)
        }
        var answers: [String] = []
        for prompt in question.prompts {
            let text = question.method == .password ? prompt.text : "(\(question.login)) \(prompt.text)"
            guard let answer = TTYPassphraseProvider.askPerson(text, echo: prompt.echo, emptyIsAnswer: true) else {
                return .unanswerable
            }
            answers.append(answer)
        }
        return .answers(answers)
    }
}
