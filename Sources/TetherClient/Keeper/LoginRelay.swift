import TetherSSH

/// Answers a person typed at the CLI for the password and keyboard-interactive questions
/// a keeper link asked (`KeeperOpen.logins`). The keeper has no terminal: a link that
/// meets such a question stops before sending the server anything, the CLI asks it at
/// its terminal with ssh's words, and a new link logs in with the answers, which it
/// forgets once logged in. Sent only over the keeper's peer-checked socket; never logged.
struct LoginAnswers: Codable, Sendable, Equatable {
    /// One keyboard-interactive round: the server's prompts and what was typed.
    struct Round: Codable, Sendable, Equatable {
        var prompts: [String]
        var answers: [String]
    }

    /// Passwords not yet refused, tried in order.
    var passwords: [String] = []
    /// Keyboard-interactive rounds in the order the server asks them; a link replays a
    /// round only for the very same prompts.
    var rounds: [Round] = []
    /// Answers servers already refused on earlier links: they count against
    /// NumberOfPasswordPrompts, as on one ssh connection.
    var refusedPasswords = 0
    var refusedKeyboard = 0
}

/// The CLI's side: asks the person each question a keeper link sent back and collects
/// the answers for the next open.
struct LoginRelay {
    private(set) var answers = LoginAnswers()
    private var questionsAsked = 0

    /// Asks `question` (terminal or SSH_ASKPASS, ssh's prompts; "Permission denied,
    /// please try again." before a password asked again) and adds the answers. False
    /// when nobody answered, or a server keeps asking new things (prompts that change on
    /// every connection, such as a challenge): then the CLI connects directly and the
    /// person answers the live exchange.
    mutating func ask(_ question: LoginQuestion, prompts limit: Int) -> Bool {
        questionsAsked += 1
        guard questionsAsked <= 2 * max(limit, 1) + 4 else { return false }
        // A link moves to the next method only when the one before has no attempts
        // left: its answers are spent, and the next link must not send them again.
        switch question.method {
        case .password:
            answers.refusedPasswords = question.attempt - 1
            answers.passwords = []
            if !answers.rounds.isEmpty {
                answers.rounds = []
                answers.refusedKeyboard = limit
            }
        case .keyboardInteractive:
            if question.attempt - 1 > answers.refusedKeyboard {
                answers.refusedKeyboard = question.attempt - 1
                answers.rounds = []
            }
            if !answers.passwords.isEmpty {
                answers.passwords = []
                answers.refusedPasswords = limit
            }
        }
        guard case .answers(let typed) = TTYLoginPrompter().answer(question) else { return false }
        switch question.method {
        case .password:
            answers.passwords = [typed.first ?? ""]
        case .keyboardInteractive:
            answers.rounds.append(LoginAnswers.Round(prompts: question.prompts.map(\.text), answers: typed))
        }
        return true
    }
}

/// The keeper's side: a link's login answers, each used once, in order; a question they
/// don't answer is kept (`question`) for the CLI to ask.
struct KeeperLoginAnswers {
    private var given: LoginAnswers
    private var usedPasswords = 0
    private var usedRounds = 0
    /// The question nobody here could answer.
    private(set) var question: LoginQuestion?

    init(_ given: LoginAnswers?) {
        self.given = given ?? LoginAnswers()
    }

    /// Attempts refused on earlier links: the link's authenticator starts after them.
    func attemptsSpent(_ method: LoginQuestion.Method) -> Int {
        method == .password ? given.refusedPasswords : given.refusedKeyboard
    }

    mutating func answer(_ asked: LoginQuestion) -> LoginAnswer {
        switch asked.method {
        case .password:
            if usedPasswords < given.passwords.count {
                usedPasswords += 1
                return .answers([given.passwords[usedPasswords - 1]])
            }
        case .keyboardInteractive:
            if usedRounds < given.rounds.count, given.rounds[usedRounds].prompts == asked.prompts.map(\.text) {
                usedRounds += 1
                return .answers(given.rounds[usedRounds - 1].answers)
            }
        }
        question = asked
        return .elsewhere
    }

    mutating func forget() {
        given = LoginAnswers()
    }
}
