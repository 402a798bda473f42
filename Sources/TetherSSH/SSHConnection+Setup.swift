import CLibSSH2
import CTetherPosix
import Glibc
import TetherIO
import TetherProtocol

/// SSH handshake, host-key verification, authentication, channel and subsystem start.
extension SSHConnection {
    /// libssh2's recv(2), skipping reads of a socket known to be empty (CTetherPosix).
    static let recvUnlessDrained: @convention(c) (Int32, UnsafeMutableRawPointer?, UInt, Int32,
                                                  UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int
        = tether_recv_unless_drained

    func beginHandshake() {
        enter(.handshaking)
        guard let session = libssh2_session_init_ex(nil, nil, nil, nil) else {
            fail(.libssh2, "cannot create a libssh2 session (out of memory?)")
            return
        }
        self.session = session
        libssh2_session_set_blocking(session, 0)
        // Reads that can only meet EAGAIN are answered without a recv(2): the socket is
        // polled level-triggered, and every readiness it reports lets the next one through
        // (`socketEvent`). A short command's answer then costs one recv(2), not three.
        tether_socket_may_have_input(socket)
        libssh2_session_callback_set(session, LIBSSH2_CALLBACK_RECV,
                                     unsafeBitCast(SSHConnection.recvUnlessDrained, to: UnsafeMutableRawPointer.self))
        knownHosts = KnownHosts(files: target.knownHostsFiles + target.globalKnownHostsFiles)
        guard applyAlgorithmPreferences(session) else { return }
        preferKnownHostKeyTypes(session)
        handshake()
    }

    /// Ciphers, MACs and KexAlgorithms as ssh resolved them, in ssh's order, limited to
    /// what libssh2 implements. None left: fail naming both lists (the transport choice
    /// normally sends such a host to OpenSSH before we get here).
    private func applyAlgorithmPreferences(_ session: OpaquePointer) -> Bool {
        let lists: [(String, [String], [Int32])] = [
            ("Ciphers", target.preferences.ciphers, [LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC]),
            ("MACs", target.preferences.macs, [LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC]),
            ("KexAlgorithms", target.preferences.kexAlgorithms, [LIBSSH2_METHOD_KEX]),
        ]
        for (keyword, wanted, methods) in lists where !wanted.isEmpty {
            let supported = LibSSH2.supportedAlgorithms(session, methods[0])
            // ssh's order, also for Ciphers at ssh's default on libssh2 1.11: there aes128-ctr
            // (before AES-GCM, as in ssh's list) costs the client 3.3–4.0 CPU-s per GB where
            // 1.11.1's AES-GCM, decrypted a 16-byte block per call, costs 5.0–8.0
            // (docs/architecture.md, "libssh2 1.11").
            let usable = wanted.filter(supported.contains)
            guard !usable.isEmpty else {
                fail(.libssh2, "none of \(keyword) \(wanted.joined(separator: ",")) is implemented by libssh2 \(LibSSH2.version) (it has \(supported.joined(separator: ","))); use the OpenSSH transport (TETHER_TRANSPORT=openssh)")
                return false
            }
            for method in methods {
                _ = libssh2_session_method_pref(session, method, usable.joined(separator: ","))
            }
        }
        return true
    }

    /// libssh2 1.10 prefers ECDSA host keys; a host known only by its ed25519 key would then
    /// look unknown. Ask for the key types known_hosts has for this host first (as ssh
    /// does), then HostKeyAlgorithms in ssh's order (libssh2's own when unset).
    private func preferKnownHostKeyTypes(_ session: OpaquePointer) {
        // Certificates can't be checked against known_hosts lines: leave them out.
        let usable = LibSSH2.supportedAlgorithms(session, LIBSSH2_METHOD_HOSTKEY).filter { !$0.contains("-cert-") }
        guard !usable.isEmpty else { return }
        // An RSA key in known_hosts is verified with rsa-sha2 signatures where libssh2
        // has them (1.11): OpenSSH servers no longer sign with ssh-rsa (SHA-1).
        let known = (knownHosts?.keyTypes(for: target.knownHostsName, session: session) ?? []).flatMap {
            $0 == "ssh-rsa" && LibSSH2.canSignRSASHA2 ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [$0]
        }
        let configured = target.preferences.hostKeyAlgorithms
        let modern = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]
        let allowed = configured.isEmpty ? modern + usable : configured
        var order: [String] = []
        for name in known + allowed where usable.contains(name) && allowed.contains(name) && !order.contains(name) {
            order.append(name)
        }
        guard !order.isEmpty else { return }
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, order.joined(separator: ","))
    }

    func handshake() {
        guard let session else { return }
        let rc = libssh2_session_handshake(session, libssh2_socket_t(socket))
        if rc == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
        guard rc == 0 else {
            fail(handshakeFailure(rc))
            return
        }
        guard verifyHostKey(session) else { return }
        knownHosts = nil
        enter(.authenticating)
        authenticator = Authenticator(session: session, target: target, passphrases: passphraseProvider,
                                      memoryKeys: memoryKeys, prompter: loginPrompter,
                                      abandon: { [weak self] in
                                          if let self, self.socket >= 0 { _ = shutdown(self.socket, Int32(SHUT_RDWR)) }
                                      },
                                      notice: { [weak self] in self?.onNotice($0) })
        authenticate()
    }

    private func handshakeFailure(_ rc: Int32) -> SSHError {
        guard let session else { return SSHError(.libssh2, host: target.displayName, "handshake failed") }
        let (code, message) = LibSSH2.lastError(session)
        if LibSSH2.isConnectionLoss(code) || LibSSH2.isConnectionLoss(rc) {
            return SSHError(.disconnected, host: target.displayName,
                            "the remote end closed the connection during the SSH handshake (not an SSH server, or sshd refused us, e.g. at its MaxStartups limit): \(message)")
        }
        switch code {
        case LIBSSH2_ERROR_KEX_FAILURE, LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE, LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
            return SSHError(.libssh2, host: target.displayName,
                            "SSH key exchange failed: \(message); libssh2 \(LibSSH2.version) needs an ed25519 or ECDSA host key (RSA host keys need rsa-sha2, libssh2 ≥ 1.11)")
        default:
            return SSHError(.libssh2, host: target.displayName, "SSH handshake failed: \(message) (libssh2 error \(code))")
        }
    }

    /// Checks the server's key against known_hosts by the policy; false after failing.
    private func verifyHostKey(_ session: OpaquePointer) -> Bool {
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type), length > 0 else {
            fail(.hostKeyUnverifiable, "the server sent no host key")
            return false
        }
        let blob = Array(UnsafeRawBufferPointer(start: raw, count: length))
        let keyType = LibSSH2.displayKeyType(keyTypeName(ofBlob: blob))
        let fingerprint = LibSSH2.hostKeyFingerprint(session)
        let name = target.knownHostsName
        let policy = target.strictHostKeyChecking
        let writable = target.knownHostsFiles.first
        let known = knownHosts ?? KnownHosts(files: [])
        switch known.check(name: name, keyBlob: blob, session: session) {
        case .match:
            return true
        case .revoked(let entry):
            fail(.hostKeyChanged, "host key \(keyType) \(fingerprint) is marked @revoked in \(entry.location); refusing to connect")
            return false
        case .mismatch(let entry):
            if let decide = hostKeyDecision {
                let problem = HostKeyProblem(kind: .changed, hostName: name, keyType: keyType, fingerprint: fingerprint,
                                             knownEntry: entry.location, keyBlob: blob)
                return apply(decide(problem), to: problem, writable: writable)
            }
            if policy == .no {
                onNotice("\(target.displayName): host key has changed (\(keyType) \(fingerprint), \(entry.location) has another); accepted because StrictHostKeyChecking is no")
                return true
            }
            fail(.hostKeyChanged, "host key has changed — possible man-in-the-middle (it is now \(keyType) \(fingerprint); \(entry.location) has another); if the change is expected, remove the old key with: ssh-keygen -R '\(name)' -f \(entry.file)")
            return false
        case .notFound:
            if let decide = hostKeyDecision {
                let problem = HostKeyProblem(kind: .unknown, hostName: name, keyType: keyType, fingerprint: fingerprint,
                                             knownEntry: nil, keyBlob: blob)
                return apply(decide(problem), to: problem, writable: writable)
            }
            switch policy {
            case .no:
                return true
            case .yes:
                let file = writable ?? "~/.ssh/known_hosts"
                let problems = known.problems.isEmpty ? "" : " (could not read: \(known.problems.prefix(3).joined(separator: "; ")))"
                fail(.hostKeyUnknown, "host key is not known (\(keyType) \(fingerprint)) and StrictHostKeyChecking is yes\(problems); check the fingerprint, then add it with: ssh-keyscan -p \(target.port) \(target.hostName) >> \(file) — or connect once with StrictHostKeyChecking accept-new")
                return false
            case .ask:
                let question = "The authenticity of host '\(target.displayName)' can't be established.\n\(keyType) key fingerprint is \(fingerprint).\nThis key is not known by any other names.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? "
                let answer = target.preferences.batchMode ? nil : hostKeyQuestion.confirm(question, fingerprint: fingerprint)
                guard let answer else {
                    fail(.hostKeyUnknown, "host key is not known (\(keyType) \(fingerprint)), StrictHostKeyChecking is ask (ssh's default) and there is no terminal to ask on\(target.preferences.batchMode ? " (BatchMode)" : ""); check the fingerprint, then run tether once on a terminal, or add it with: ssh-keyscan -p \(target.port) \(target.hostName) >> \(writable ?? "~/.ssh/known_hosts") — or set StrictHostKeyChecking accept-new")
                    return false
                }
                guard answer else {
                    fail(.hostKeyUnknown, "host key verification failed: you declined \(keyType) \(fingerprint)")
                    return false
                }
                return record(name: name, blob: blob, keyType: keyType, fingerprint: fingerprint, in: writable)
            case .acceptNew:
                return record(name: name, blob: blob, keyType: keyType, fingerprint: fingerprint, in: writable)
            }
        }
    }

    /// A library caller's `hostKeyDecision`, carried out.
    private func apply(_ verdict: HostKeyVerdict, to problem: HostKeyProblem, writable: String?) -> Bool {
        switch verdict {
        case .accept:
            return true
        case .acceptAndRecord:
            return record(name: problem.hostName, blob: problem.keyBlob, keyType: problem.keyType,
                          fingerprint: problem.fingerprint, in: writable)
        case .reject:
            let what = problem.kind == .changed
                ? "host key has changed (it is now \(problem.keyType) \(problem.fingerprint); \(problem.knownEntry ?? "known_hosts") has another)"
                : "host key is not known (\(problem.keyType) \(problem.fingerprint))"
            fail(problem.kind == .changed ? .hostKeyChanged : .hostKeyUnknown, "\(what), and the program's host key decision refused it")
            return false
        }
    }

    /// Adds an accepted key to the first UserKnownHostsFile (hashed under HashKnownHosts).
    private func record(name: String, blob: [UInt8], keyType: String, fingerprint: String, in writable: String?) -> Bool {
        guard let writable else {
            fail(.hostKeyUnverifiable, "host key is not known (\(keyType) \(fingerprint)) and there is no UserKnownHostsFile to add it to")
            return false
        }
        do {
            try KnownHosts.append(name: name, keyBlob: blob, to: writable, hashed: target.preferences.hashKnownHosts)
        } catch {
            fail(.hostKeyUnverifiable, "host key is not known (\(keyType) \(fingerprint)) and could not be recorded: \(error)")
            return false
        }
        onNotice("permanently added '\(name)' (\(keyType) \(fingerprint)) to the list of known hosts (\(writable))")
        return true
    }

    func authenticate() {
        guard let authenticator else { return }
        let outcome = authenticator.step()
        extendSetupDeadline(bySeconds: authenticator.secondsWaitingForPerson - personSecondsCounted)
        personSecondsCounted = authenticator.secondsWaitingForPerson
        switch outcome {
        case .wouldBlock:
            waitForLibSSH2()
        case .failed(let error):
            fail(error)
        case .succeeded:
            authenticator.releaseAgent()
            self.authenticator = nil
            if target.gatewaySocket != nil {
                enter(.openingGateway)
                openGatewayChannel()
            } else {
                enter(.openingChannel)
                openChannel()
            }
        }
    }

    /// An OpenSSH `direct-streamlocal@openssh.com` channel to the host's gateway socket:
    /// sshd connects it as the user, and the registry behind it starts a subsystem on it.
    /// libssh2 1.10 has no call for this channel type, but its generic open sends the
    /// type-specific fields we give it: the socket path, then a reserved string and uint32.
    func openGatewayChannel() {
        guard let session, let path = target.gatewaySocket else { return }
        let type = "direct-streamlocal@openssh.com"
        let fields = Self.streamLocalOpenFields(path: path)
        let opened = fields.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                libssh2_channel_open_ex(session, type, UInt32(type.utf8.count), channelWindowBytes,
                                        UInt32(LIBSSH2_CHANNEL_PACKET_DEFAULT), chars.baseAddress, UInt32(chars.count))
            }
        }
        guard let opened else {
            if LibSSH2.lastErrno(session) == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
            let (code, message) = LibSSH2.lastError(session)
            if LibSSH2.isConnectionLoss(code) {
                fail(.disconnected, "connection lost while opening a channel to the Tether gateway: \(message)")
                return
            }
            // Forwarding disabled on this host or key, or no registry listening (it died,
            // or the host rebooted): the subsystem path works in every such case.
            gatewayRefusal = message
            enter(.openingChannel)
            openChannel()
            return
        }
        channel = opened
        becomeReady(via: .gateway)
    }

    /// RFC 4254-style fields of a `direct-streamlocal@openssh.com` open (OpenSSH's
    /// PROTOCOL, section 2.4): string socket path, string reserved, uint32 reserved.
    static func streamLocalOpenFields(path: String) -> [UInt8] {
        var fields = ByteWriter(capacity: path.utf8.count + 12)
        fields.write(UInt32(path.utf8.count))
        fields.write(contentsOf: path.utf8)
        fields.write(UInt32(0))
        fields.write(UInt32(0))
        return fields.bytes
    }

    func openChannel() {
        guard let session else { return }
        let type = "session"
        guard let opened = libssh2_channel_open_ex(session, type, UInt32(type.utf8.count), channelWindowBytes,
                                                   UInt32(LIBSSH2_CHANNEL_PACKET_DEFAULT), nil, 0) else {
            if LibSSH2.lastErrno(session) == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
            let (code, message) = LibSSH2.lastError(session)
            if LibSSH2.isConnectionLoss(code) {
                fail(.disconnected, "connection lost while opening the session channel: \(message)")
            } else {
                fail(.libssh2, "the server refused a session channel: \(message) (sshd's MaxSessions, or a forced command/restriction on this key?)")
            }
            return
        }
        channel = opened
        enter(.startingSubsystem)
        startSubsystem()
    }

    func startSubsystem() {
        guard let session, let channel else { return }
        let request = "subsystem"
        let name = target.subsystem
        let rc = libssh2_channel_process_startup(channel, request, UInt32(request.utf8.count), name, UInt32(name.utf8.count))
        if rc == LIBSSH2_ERROR_EAGAIN { waitForLibSSH2(); return }
        guard rc == 0 else {
            let (code, message) = LibSSH2.lastError(session)
            if LibSSH2.isConnectionLoss(code) {
                fail(.disconnected, "connection lost while starting the '\(name)' subsystem: \(message)")
            } else if rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED || rc == LIBSSH2_ERROR_CHANNEL_FAILURE {
                fail(.subsystemUnavailable, "the host's sshd has no `\(name)` subsystem; install Tether there (its Debian package: apt install ./tether_VERSION_ARCH.deb, or scripts/install-host)")
            } else {
                fail(.libssh2, "starting the '\(name)' subsystem failed: \(message) (libssh2 error \(code))")
            }
            return
        }
        becomeReady(via: .subsystem)
    }

    func becomeReady(via route: ConnectionRoute) {
        self.route = route
        enter(.ready)
        if let setupTimer { reactor.cancel(setupTimer) }
        setupTimer = nil
        let ready = onReady
        onReady = nil
        ready?()
        // Data may already sit in libssh2's buffers; and onReady may have queued writes.
        if phase == .ready { pump() }
    }
}
