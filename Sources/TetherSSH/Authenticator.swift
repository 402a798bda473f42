import CLibSSH2
import Glibc
import TetherIO

/// Public-key authentication as a resumable sequence of attempts: ssh-agent identities
/// first, then identity files. Each libssh2 call that returns EAGAIN is repeated with the
/// same arguments on the next `step()` (libssh2's retry rule), so the connection simply
/// calls `step()` whenever the socket is ready.
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
        case startAgent
        case nextAgentIdentity(after: UnsafeMutablePointer<libssh2_agent_publickey>?)
        case tryAgentIdentity(UnsafeMutablePointer<libssh2_agent_publickey>, label: String)
        case nextFile(Int)
        case tryFile(Int, path: String, passphrase: String?, label: String)
        case exhausted
    }

    private let session: OpaquePointer
    private let target: SSHTarget
    private let passphrases: PassphraseProvider
    private let memoryKeys: [MemoryKey]
    private let notice: (String) -> Void
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
         memoryKeys: [MemoryKey] = [], notice: @escaping (String) -> Void) {
        self.session = session
        self.target = target
        self.passphrases = passphrases
        self.memoryKeys = memoryKeys
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
                let methods = String(cString: list).split(separator: ",").map(String.init)
                guard methods.contains("publickey") else {
                    return .failed(failure("the server does not accept public keys for user '\(user)' (it allows: \(methods.joined(separator: ", "))); tether authenticates with ssh-agent or identity files only"))
                }
                phase = .nextMemoryKey(0)

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
                guard index < files.count else { phase = .exhausted; continue }
                phase = .nextFile(index + 1)
                if let attempt = prepareFile(index) { phase = attempt }

            case .tryFile(let index, let path, let passphrase, let label):
                let rc = libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), nil, path, passphrase)
                if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
                if rc == 0 { return .succeeded }
                if let lost = connectionLost(rc) { return .failed(lost) }
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

            case .exhausted:
                releaseAgent()
                var parts = ["permission denied (publickey) for user '\(user)'"]
                parts.append(tried.isEmpty ? "no key was offered" : "tried: \(tried.joined(separator: ", "))")
                if !skipped.isEmpty { parts.append("skipped: \(skipped.joined(separator: "; "))") }
                return .failed(failure(parts.joined(separator: "; ")))
            }
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
        return .tryFile(index, path: path, passphrase: passphrase, label: label)
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
