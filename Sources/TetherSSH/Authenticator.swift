import CLibSSH2
import Glibc
import TetherIO

/// Authentication as a resumable sequence of attempts, in ssh's order of methods
/// (PreferredAuthentications, limited to what the server and the config allow):
/// public keys — ssh-agent identities first, then identity files —, then
/// keyboard-interactive and password, asked of a person (`LoginPrompter`) up to
/// NumberOfPasswordPrompts times each. Each libssh2 call that returns EAGAIN is repeated
/// with the same arguments on the next `step()` (libssh2's retry rule), so the
/// connection simply calls `step()` whenever the socket is ready.
final class Authenticator {
    enum Outcome {
        case wouldBlock
        case succeeded
        case failed(SSHError)
    }

    private enum Phase {
        case listMethods
        case nextMemoryKey(Int)
        case tryMemoryKey(Int, passphrase: String?, label: String)
        case nextMethod
        case startAgent
        case nextAgentIdentity(after: UnsafeMutablePointer<libssh2_agent_publickey>?)
        case tryAgentIdentity(UnsafeMutablePointer<libssh2_agent_publickey>, label: String)
        case nextFile(Int)
        case tryFile(Int, path: String, passphrase: String?, label: String, certificate: String?)
        case keyboardInteractive(attempt: Int)
        case askPassword(attempt: Int)
        case tryPassword(attempt: Int, password: [CChar])
        case exhausted
    }

    private let session: OpaquePointer
    private let target: SSHTarget
    private let passphrases: PassphraseProvider
    private let memoryKeys: [MemoryKey]
    private let prompter: LoginPrompter
    /// Ends the connection at once (shutdown of its socket): a keyboard-interactive
    /// question only someone elsewhere can answer must not be answered wrongly.
    private let abandon: () -> Void
    private let notice: (String) -> Void
    /// The server's methods ("publickey,password"), as ssh's "Permission denied" names them.
    private var serverMethods: [String] = []
    /// Ours still to try, in order.
    private var methodsLeft: [String] = []
    /// A keyboard-interactive question was handed to someone elsewhere: stop.
    private var handedOver = false
    private var phase = Phase.listMethods
    private var agent: OpaquePointer?
    /// Public key blobs of the identity files that have one (for IdentitiesOnly, dedup).
    private var files: [(path: String, loaded: Result<IdentityFile, IdentityFile.LoadError>)] = []
    private var triedBlobs = Set<[UInt8]>()
    private(set) var tried: [String] = []
    private(set) var skipped: [String] = []
    /// Seconds spent waiting for a person to type a passphrase: not the network's fault,
    /// so the connection adds it to its setup deadline.
    private(set) var secondsWaitingForPerson = 0.0

    init(session: OpaquePointer, target: SSHTarget, passphrases: PassphraseProvider,
         memoryKeys: [MemoryKey] = [],
         prompter: LoginPrompter = TTYLoginPrompter(), abandon: @escaping () -> Void = {},
         notice: @escaping (String) -> Void) {
        self.session = session
        self.target = target
        self.passphrases = passphrases
        self.memoryKeys = memoryKeys
        self.prompter = prompter
        self.abandon = abandon
        self.notice = notice
        files = target.identityFiles.map { ($0, IdentityFile.load($0)) }
    }

    deinit { releaseAgent() }

    func releaseAgent() {
        if let agent {
            libssh2_agent_disconnect(agent)
            libssh2_agent_free(agent)
            self.agent = nil
        }
    }

    func step() -> Outcome {
        let user = target.user
        while true {
            switch phase {
            case .listMethods:
                guard let list = libssh2_userauth_list(session, user, UInt32(user.utf8.count)) else {
                    if libssh2_userauth_authenticated(session) != 0 { return .succeeded }
                    if LibSSH2.lastErrno(session) == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                    return .failed(libssh2Failure("asking which authentication methods the server allows"))
                }
                serverMethods = String(cString: list).split(separator: ",").map(String.init)
                methodsLeft = Self.methodOrder(target.preferences).filter(serverMethods.contains)
                for method in serverMethods where !methodsLeft.contains(method) {
                    if let why = Self.disabledReason(method, target.preferences) { skipped.append("\(method) (\(why))") }
                }
                if methodsLeft.contains(where: { $0 != "publickey" }) && !prompter.canAsk {
                    let interactive = methodsLeft.filter { $0 != "publickey" }
                    skipped.append("\(interactive.joined(separator: " and ")) (no terminal to ask on, and no SSH_ASKPASS)")
                    methodsLeft.removeAll { $0 != "publickey" }
                }
                phase = .nextMethod

            case .nextMethod:
                guard !methodsLeft.isEmpty else { phase = .exhausted; continue }
                let method = methodsLeft.removeFirst()
                // Public keys: the program's in-memory ones first, then the agent's, then files.
                guard method != "publickey" else { phase = .nextMemoryKey(0); continue }
                let kind: LoginQuestion.Method = method == "password" ? .password : .keyboardInteractive
                // Attempts a person already had refused (on an earlier keeper link) count.
                let attempt = prompter.attemptsSpent(kind) + 1
                if attempt > target.preferences.passwordPrompts {
                    tried.append(method)
                    continue
                }
                phase = kind == .password ? .askPassword(attempt: attempt) : .keyboardInteractive(attempt: attempt)

            case .nextMemoryKey(let index):
                guard index < memoryKeys.count else { phase = .startAgent; continue }
                phase = .nextMemoryKey(index + 1)
                if let attempt = prepareMemoryKey(index) { phase = attempt }

            case .tryMemoryKey(let index, let passphrase, let label):
                let key = memoryKeys[index].privateKey
                let rc = key.withUnsafeBufferPointer { bytes in
                    bytes.withMemoryRebound(to: CChar.self) { chars in
                        // libssh2 derives the public key from the private one.
                        libssh2_userauth_publickey_frommemory(session, user, user.utf8.count, nil, 0,
                                                              chars.baseAddress, chars.count, passphrase)
                    }
                }
                if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                if rc == 0 { return .succeeded }
                if let lost = connectionLost(rc) { return .failed(lost) }
                if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED {
                    skipped.append("\(memoryKeys[index].label) (libssh2 could not use it\(passphrase != nil ? ": wrong passphrase?" : ""): \(LibSSH2.lastError(session).message))")
                } else {
                    tried.append(label)
                }
                phase = .nextMemoryKey(index + 1)

            case .startAgent:
                phase = .nextFile(0)
                if let start = connectAgent() { phase = start }

            case .nextAgentIdentity(let previous):
                var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
                guard let agent, libssh2_agent_get_identity(agent, &identity, previous) == 0, let identity else {
                    phase = .nextFile(0)
                    continue
                }
                phase = .nextAgentIdentity(after: identity)
                let blob = Array(UnsafeRawBufferPointer(start: identity.pointee.blob, count: identity.pointee.blob_len))
                let comment = identity.pointee.comment.map { String(cString: $0) } ?? ""
                let type = keyTypeName(ofBlob: blob)
                let label = "agent key \(comment.isEmpty ? "(no comment)" : "'\(comment)'") (\(LibSSH2.displayKeyType(type)))"
                if target.identitiesOnly && !fileBlobs.contains(blob) { continue }
                if type == "ssh-rsa" && !LibSSH2.canSignRSASHA2 {
                    skipRSA(label)
                    continue
                }
                guard triedBlobs.insert(blob).inserted else { continue }
                phase = .tryAgentIdentity(identity, label: label)

            case .tryAgentIdentity(let identity, let label):
                let rc = libssh2_agent_userauth(agent, user, identity)
                if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                if rc == 0 { return .succeeded }
                if let lost = connectionLost(rc) { return .failed(lost) }
                tried.append(label)
                phase = .nextAgentIdentity(after: identity)

            case .nextFile(let index):
                guard index < files.count else { phase = .nextMethod; continue }
                phase = .nextFile(index + 1)
                if let attempt = prepareFile(index) { phase = attempt }

            case .tryFile(let index, let path, let passphrase, let label, let certificate):
                // With a certificate, libssh2 (≥ 1.11) sends it and signs with the key.
                let rc = libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), certificate, path, passphrase)
                if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                if rc == 0 { return .succeeded }
                if let lost = connectionLost(rc) { return .failed(lost) }
                if let certificate {
                    // Refused as a certificate: the plain key next, as ssh does.
                    tried.append("\(certificate) (certificate)")
                    phase = .tryFile(index, path: path, passphrase: passphrase, label: label, certificate: nil)
                    continue
                }
                if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED {
                    // libssh2 could not use the file itself (#608: a wrong passphrase looks
                    // like this too); we checked the format before, so say what is likely.
                    if passphrase != nil {
                        TTYPassphraseProvider.forget(path)
                        skipped.append("\(path) (could not decrypt it: wrong passphrase?)")
                    } else {
                        skipped.append("\(path) (libssh2 could not read it: \(LibSSH2.lastError(session).message))")
                    }
                } else {
                    tried.append(label)
                }
                phase = .nextFile(index + 1)

            case .keyboardInteractive(let attempt):
                releaseAgent()
                libssh2_session_abstract(session).pointee = Unmanaged.passUnretained(self).toOpaque()
                keyboardAttempt = attempt
                let rc = libssh2_userauth_keyboard_interactive_ex(session, user, UInt32(user.utf8.count)) {
                    name, nameLength, instruction, instructionLength, count, prompts, responses, abstract in
                    guard let context = abstract?.pointee else { return }
                    let authenticator = Unmanaged<Authenticator>.fromOpaque(context).takeUnretainedValue()
                    authenticator.answerKeyboardInteractive(
                        name: LibSSH2.text(name, Int(nameLength)), instruction: LibSSH2.text(instruction, Int(instructionLength)),
                        prompts: (0..<Int(max(count, 0))).map { index in
                            LoginQuestion.Prompt(text: LibSSH2.text(prompts?[index].text, Int(prompts?[index].length ?? 0)),
                                                 echo: prompts?[index].echo ?? 0 != 0)
                        },
                        fill: { answers in
                            for (index, answer) in answers.enumerated() where index < Int(count) {
                                responses?[index].text = strdup(answer)
                                responses?[index].length = UInt32(answer.utf8.count)
                            }
                        })
                }
                if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                libssh2_session_abstract(session).pointee = nil
                if handedOver { return .failed(failure("keyboard-interactive authentication needs a person's answers")) }
                if rc == 0 { return .succeeded }
                if let lost = connectionLost(rc) { return .failed(lost) }
                if keyboardGaveUp {
                    keyboardGaveUp = false
                    skipped.append("keyboard-interactive (nobody answered)")
                    phase = .nextMethod
                } else {
                    if !tried.contains("keyboard-interactive") { tried.append("keyboard-interactive") }
                    phase = attempt < target.preferences.passwordPrompts ? .keyboardInteractive(attempt: attempt + 1) : .nextMethod
                }

            case .askPassword(let attempt):
                releaseAgent()
                let question = LoginQuestion(method: .password, login: login,
                                             prompts: [LoginQuestion.Prompt(text: "\(login)'s password: ", echo: false)],
                                             attempt: attempt)
                switch askPerson(question) {
                case .answers(let answers):
                    phase = .tryPassword(attempt: attempt, password: Array((answers.first ?? "").utf8CString))
                case .unanswerable:
                    if attempt == 1 { skipped.append("password (nobody answered)") }
                    phase = .nextMethod
                case .elsewhere:
                    return .failed(failure("password authentication needs a person's answer"))
                }

            case .tryPassword(let attempt, var password):
                let rc = password.withUnsafeBufferPointer { secret in
                    libssh2_userauth_password_ex(session, user, UInt32(user.utf8.count),
                                                 secret.baseAddress, UInt32(secret.count - 1), nil)
                }
                if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                for index in password.indices { password[index] = 0 }
                phase = .exhausted
                if rc == 0 { return .succeeded }
                if let lost = connectionLost(rc) { return .failed(lost) }
                if rc == LIBSSH2_ERROR_PASSWORD_EXPIRED {
                    return .failed(failure("the password of '\(user)' has expired and the server wants it changed; change it with ssh \(login) (tether cannot)"))
                }
                if !tried.contains("password") { tried.append("password") }
                phase = attempt < target.preferences.passwordPrompts ? .askPassword(attempt: attempt + 1) : .nextMethod

            case .exhausted:
                releaseAgent()
                var parts = ["Permission denied (\(serverMethods.joined(separator: ","))) for user '\(user)'"]
                parts.append(tried.isEmpty ? "no key was offered" : "tried: \(tried.joined(separator: ", "))")
                if !skipped.isEmpty { parts.append("skipped: \(skipped.joined(separator: "; "))") }
                return .failed(failure(parts.joined(separator: "; ")))
            }
        }
    }

    /// ssh's order of methods (PreferredAuthentications, its default when unset), the
    /// ones Tether implements, as the config allows them (BatchMode: no person to ask).
    static func methodOrder(_ preferences: SSHPreferences) -> [String] {
        preferences.preferredAuthentications.filter { method in
            switch method {
            case "publickey": preferences.publicKeyAuthentication
            case "keyboard-interactive": preferences.keyboardInteractiveAuthentication && !preferences.batchMode
            case "password": preferences.passwordAuthentication && !preferences.batchMode
            default: false
            }
        }
    }

    /// Why the config rules out a method the server offers (nil: one Tether doesn't do).
    static func disabledReason(_ method: String, _ preferences: SSHPreferences) -> String? {
        let enabled: Bool
        let keyword: String
        switch method {
        case "publickey": (enabled, keyword) = (preferences.publicKeyAuthentication, "PubkeyAuthentication")
        case "keyboard-interactive": (enabled, keyword) = (preferences.keyboardInteractiveAuthentication, "KbdInteractiveAuthentication")
        case "password": (enabled, keyword) = (preferences.passwordAuthentication, "PasswordAuthentication")
        default: return nil
        }
        if !enabled { return "\(keyword) no" }
        if method != "publickey" && preferences.batchMode { return "BatchMode yes: nobody is asked" }
        if !preferences.preferredAuthentications.contains(method) { return "not in PreferredAuthentications" }
        return nil
    }

    /// "user@host" as ssh's prompts name the login (HostKeyAlias over HostName).
    private var login: String { "\(target.user)@\(target.preferences.hostKeyAlias ?? target.hostName)" }

    private var keyboardAttempt = 1
    private var keyboardGaveUp = false

    /// The person's time doesn't count against the connect timeout.
    private func askPerson(_ question: LoginQuestion) -> LoginAnswer {
        let started = Reactor.now()
        defer { secondsWaitingForPerson += Double(Reactor.now() - started) / 1e9 }
        return prompter.answer(question)
    }

    /// libssh2's keyboard-interactive callback: one round of the server's prompts. A round
    /// without prompts (an instruction only) is answered without asking anyone.
    private func answerKeyboardInteractive(name: String, instruction: String, prompts: [LoginQuestion.Prompt],
                                           fill: ([String]) -> Void) {
        guard !handedOver else { return }
        if prompts.isEmpty && name.isEmpty && instruction.isEmpty { return }
        let question = LoginQuestion(method: .keyboardInteractive, login: login, name: name,
                                     instruction: instruction, prompts: prompts, attempt: keyboardAttempt)
        switch prompts.isEmpty ? .answers([]) : askPerson(question) {
        case .answers(let answers):
            fill(answers)
        case .unanswerable:
            // The exchange has started and must be answered: empty answers, then on.
            keyboardGaveUp = true
            fill(prompts.map { _ in "" })
        case .elsewhere:
            // Someone else will answer on a new connection: this one ends before libssh2
            // can send the server anything in our name.
            handedOver = true
            abandon()
        }
    }

    private var fileBlobs: Set<[UInt8]> {
        Set(files.compactMap { try? $0.loaded.get().publicKeyBlob })
    }

    /// Connects to $SSH_AUTH_SOCK unless IdentitiesOnly rules it out. The agent protocol is
    /// a local Unix socket that libssh2 talks to synchronously; it answers in microseconds.
    private func connectAgent() -> Phase? {
        // IdentityAgent: none = no agent; a path = that agent; unset = $SSH_AUTH_SOCK.
        let configured = target.preferences.identityAgent
        guard configured != "none", let socketPath = configured ?? Environment.get("SSH_AUTH_SOCK") else { return nil }
        if target.identitiesOnly && fileBlobs.isEmpty { return nil }
        guard let agent = libssh2_agent_init(session) else { return nil }
        self.agent = agent
        libssh2_agent_set_identity_path(agent, socketPath)
        guard libssh2_agent_connect(agent) == 0 else {
            skipped.append("ssh-agent at \(socketPath) (cannot connect: \(LibSSH2.lastError(session).message))")
            releaseAgent()
            return nil
        }
        guard libssh2_agent_list_identities(agent) == 0 else {
            skipped.append("ssh-agent at \(socketPath) (cannot list its keys: \(LibSSH2.lastError(session).message))")
            releaseAgent()
            return nil
        }
        return .nextAgentIdentity(after: nil)
    }

    /// Checks an identity file before libssh2 sees it; nil to skip it (with a reason).
    private func prepareFile(_ index: Int) -> Phase? {
        let path = files[index].path
        let key: IdentityFile
        switch files[index].loaded {
        case .failure(.missing):
            // The default identity files are often absent; a configured one is worth a word.
            let defaults = ["/.ssh/id_ed25519", "/.ssh/id_ecdsa", "/.ssh/id_rsa"]
            if !defaults.contains(where: { path.hasSuffix($0) }) {
                skipped.append("\(path) (no such file)")
            }
            return nil
        case .failure(.unreadable(let why)):
            skipped.append("\(path) (cannot read it: \(why))")
            return nil
        case .failure(.notAKey(let why)):
            skipped.append("\(path) (\(why))")
            return nil
        case .success(let loaded):
            key = loaded
        }
        if key.format == .publicOnly {
            // It named an agent key (IdentitiesOnly matching); there is nothing to read.
            if let blob = key.publicKeyBlob, !triedBlobs.contains(blob) {
                skipped.append("\(path) (only a public key, and the agent did not offer it)")
            }
            return nil
        }
        if key.isSecurityKey {
            skipped.append("\(path) (a FIDO/security key: libssh2 cannot use it; Tether uses OpenSSH's ssh for such hosts unless TETHER_TRANSPORT=libssh2)")
            return nil
        }
        let label = "\(path) (\(LibSSH2.displayKeyType(key.keyType)))"
        if key.isRSA && !LibSSH2.canSignRSASHA2 {
            skipRSA(path)
            return nil
        }
        if let blob = key.publicKeyBlob {
            // The agent already offered this key; offering it again only burns MaxAuthTries.
            guard !triedBlobs.contains(blob) else { return nil }
            triedBlobs.insert(blob)
        }
        var passphrase: String?
        if key.isEncrypted {
            let started = Reactor.now()
            passphrase = passphrases.passphrase(for: path)
            secondsWaitingForPerson += Double(Reactor.now() - started) / 1e9
            if passphrase == nil {
                skipped.append("\(path) (encrypted, and no passphrase was given: no terminal to ask on? add it to ssh-agent with ssh-add)")
                return nil
            }
        }
        let certificate = UserCertificates.libssh2CanUse
            ? UserCertificates.certificate(for: path, publicKey: key.publicKeyBlob,
                                           certificateFiles: target.preferences.certificateFiles)
            : nil
        return .tryFile(index, path: path, passphrase: passphrase, label: label, certificate: certificate)
    }

    /// Checks an in-memory key as `prepareFile` checks a file; nil to skip it.
    private func prepareMemoryKey(_ index: Int) -> Phase? {
        let memory = memoryKeys[index]
        let key: IdentityFile
        switch IdentityFile.parse(memory.privateKey, path: memory.label) {
        case .success(let parsed) where parsed.format != .publicOnly:
            key = parsed
        case .success:
            skipped.append("\(memory.label) (only a public key)")
            return nil
        case .failure(.notAKey(let why)), .failure(.unreadable(let why)):
            skipped.append("\(memory.label) (\(why))")
            return nil
        case .failure(.missing):
            skipped.append("\(memory.label) (empty)")
            return nil
        }
        if key.isSecurityKey {
            skipped.append("\(memory.label) (a FIDO/security key: libssh2 cannot use it)")
            return nil
        }
        if key.isRSA && !LibSSH2.canSignRSASHA2 {
            skipRSA(memory.label)
            return nil
        }
        if let blob = key.publicKeyBlob { triedBlobs.insert(blob) }
        var passphrase = memory.passphrase
        if key.isEncrypted && passphrase == nil {
            let started = Reactor.now()
            passphrase = passphrases.passphrase(for: memory.label)
            secondsWaitingForPerson += Double(Reactor.now() - started) / 1e9
            if passphrase == nil {
                skipped.append("\(memory.label) (encrypted, and no passphrase was given)")
                return nil
            }
        }
        return .tryMemoryKey(index, passphrase: passphrase, label: "\(memory.label) (\(LibSSH2.displayKeyType(key.keyType)))")
    }

    private func skipRSA(_ what: String) {
        skipped.append("\(what) (RSA: libssh2 \(LibSSH2.version) signs RSA only with SHA-1)")
        RSANotice.once {
            notice("skipping RSA key \(what): the linked libssh2 \(LibSSH2.version) can only make ssh-rsa (SHA-1) signatures, which OpenSSH 8.8 and later refuse; use an ed25519 key (ssh-keygen -t ed25519) in a file or in ssh-agent, or libssh2 1.11 or later")
        }
    }

    private func connectionLost(_ rc: Int32) -> SSHError? {
        guard LibSSH2.isConnectionLoss(rc) else { return nil }
        let sofar = tried.isEmpty ? "" : " after trying \(tried.joined(separator: ", "))"
        return failure("the server closed the connection during authentication\(sofar) (too many keys for its MaxAuthTries? set IdentitiesOnly yes and IdentityFile)")
    }

    private func failure(_ message: String) -> SSHError {
        SSHError(.authenticationFailed, host: target.displayName, message)
    }

    private func libssh2Failure(_ doing: String) -> SSHError {
        let (code, message) = LibSSH2.lastError(session)
        if LibSSH2.isConnectionLoss(code) {
            return SSHError(.disconnected, host: target.displayName, "connection lost while \(doing): \(message)")
        }
        return SSHError(.libssh2, host: target.displayName, "\(doing) failed: \(message) (libssh2 error \(code))")
    }
}

/// The RSA explanation is said once per process, however many hosts hit it.
enum RSANotice {
    private static let lock = Lock()
    nonisolated(unsafe) private static var said = false

    static func once(_ body: () -> Void) {
        let first = lock.withLock { () -> Bool in
            defer { said = true }
            return !said
        }
        if first { body() }
    }
}
