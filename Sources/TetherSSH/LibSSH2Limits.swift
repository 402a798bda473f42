import CLibSSH2
import Glibc
import TetherIO

/// What the libssh2 transport cannot do as `ssh` would for one resolved destination. Each
/// reason is a phrase for "tether: HOST: using OpenSSH's ssh: REASON"; none means libssh2
/// honours everything that matters here. Checked before connecting, from the config, the
/// key files, the agent's key list and known_hosts — no network.
public enum LibSSH2Limits {
    public static func reasons(target: SSHTarget, config: SSHResolvedConfig?) -> [String] {
        var reasons: [String] = []
        let version = LibSSH2.version
        let paths = PathExpansion(home: Environment.homeDirectoryOfCurrentUser(), localUser: Environment.userName(),
                                  remoteUser: target.user, hostName: target.hostName, alias: target.alias,
                                  port: target.port, hostKeyAlias: target.preferences.hostKeyAlias)
        if let config {
            let certificates = config.values("certificatefile").compactMap { try? paths.expand($0, what: "CertificateFile") }
                .filter { access($0, R_OK) == 0 }
            if UserCertificates.libssh2CanUse {
                // 1.11 offers a certificate with the identity file it certifies.
                let identities = target.identityFiles.compactMap { try? IdentityFile.load($0).get() }
                if let first = UserCertificates.unpaired(certificates, identities: identities).first {
                    reasons.append("CertificateFile \(first): its key is in no identity file (only ssh signs with an agent key for a certificate)")
                }
            } else if let first = certificates.first {
                reasons.append("CertificateFile \(first): the libssh2 transport offers user certificates only with libssh2 1.11 or later (linked: \(version))")
            }
            if let provider = config.value("pkcs11provider"), provider.lowercased() != "none" {
                reasons.append("PKCS11Provider \(provider): libssh2 cannot use PKCS#11 tokens")
            }
            if let control = config.value("controlpath"), control.lowercased() != "none", isSocket(control) {
                reasons.append("ControlPath \(control): an ssh master is running there; its connection is shared")
            }
        }
        var keyTypes: [String] = []
        if target.preferences.publicKeyAuthentication {
            let files = target.identityFiles.compactMap { try? IdentityFile.load($0).get() }
            for file in files where file.format != .publicOnly {
                if file.isSecurityKey {
                    reasons.append("\(file.path) is a FIDO/security key (\(file.keyType ?? "sk")): libssh2 cannot use it")
                }
                if access(file.path + "-cert.pub", R_OK) == 0 && !UserCertificates.libssh2CanUse {
                    reasons.append("\(file.path)-cert.pub: ssh offers that certificate, the libssh2 transport only with libssh2 1.11 or later (linked: \(version))")
                }
            }
            var agentKeys: [[UInt8]] = []
            let agent = target.preferences.identityAgent
            if agent != "none", let socket = agent ?? Environment.get("SSH_AUTH_SOCK") {
                agentKeys = AgentKeys.list(socket: socket) ?? []
            }
            if target.identitiesOnly {
                let named = Set(files.compactMap(\.publicKeyBlob))
                agentKeys = agentKeys.filter { named.contains($0) }
            }
            keyTypes = files.filter { $0.format != .publicOnly }.compactMap(\.keyType)
                + agentKeys.compactMap(keyTypeName(ofBlob:))
            if !LibSSH2.canSignRSASHA2, !keyTypes.isEmpty, keyTypes.allSatisfy({ $0 == "ssh-rsa" }) {
                reasons.append("the only keys to offer are RSA keys, and libssh2 \(version) signs RSA with SHA-1 only (OpenSSH ≥ 8.8 refuses that)")
            }
        }
        reasons += sessionReasons(target: target, version: version)
        return reasons
    }

    /// The checks that need libssh2's tables: algorithms and known_hosts (hashed names).
    private static func sessionReasons(target: SSHTarget, version: String) -> [String] {
        SSHLibrary.initialize()
        guard let session = libssh2_session_init_ex(nil, nil, nil, nil) else { return [] }
        defer { libssh2_session_free(session) }
        var reasons: [String] = []
        let known = KnownHosts(files: target.knownHostsFiles + target.globalKnownHostsFiles)
        let name = target.knownHostsName
        if let authority = known.certificateAuthorities(for: name, session: session).first {
            reasons.append("\(authority.location) vouches for this host with @cert-authority; libssh2 cannot check host certificates")
        }
        let types = known.keyTypes(for: name, session: session)
        if !LibSSH2.canSignRSASHA2, !types.isEmpty, types.allSatisfy({ $0 == "ssh-rsa" }) {
            reasons.append("known_hosts knows this host only by its RSA key, which libssh2 \(version) can verify only with SHA-1 signatures")
        }
        let lists: [(String, [String], Int32)] = [
            ("Ciphers", target.preferences.ciphers, LIBSSH2_METHOD_CRYPT_CS),
            ("MACs", target.preferences.macs, LIBSSH2_METHOD_MAC_CS),
            ("KexAlgorithms", target.preferences.kexAlgorithms, LIBSSH2_METHOD_KEX),
            ("HostKeyAlgorithms", target.preferences.hostKeyAlgorithms, LIBSSH2_METHOD_HOSTKEY),
        ]
        for (keyword, wanted, method) in lists where !wanted.isEmpty {
            let supported = LibSSH2.supportedAlgorithms(session, method)
            if !wanted.contains(where: supported.contains) {
                reasons.append("none of \(keyword) \(wanted.joined(separator: ",")) is in libssh2 \(version)")
            }
        }
        return reasons
    }

    private static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}

extension LibSSH2 {
    /// The algorithm names libssh2 implements for a method (kex, hostkey, cipher, MAC).
    static func supportedAlgorithms(_ session: OpaquePointer, _ method: Int32) -> [String] {
        var list: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        let count = libssh2_session_supported_algs(session, method, &list)
        guard count > 0, let list else { return [] }
        defer { libssh2_free(session, list) }
        return (0..<Int(count)).compactMap { list[$0].map { String(cString: $0) } }
    }
}
