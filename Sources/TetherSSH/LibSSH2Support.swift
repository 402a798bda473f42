import CLibSSH2

/// Small facts about the linked libssh2 and its error reporting.
enum LibSSH2 {
    /// The runtime version string ("1.10.0").
    static var version: String {
        libssh2_version(0).map { String(cString: $0) } ?? "unknown"
    }

    /// rsa-sha2-256/512 signatures arrived in 1.11.0; before that RSA keys sign only with
    /// ssh-rsa (SHA-1), which OpenSSH ≥ 8.8 refuses by default.
    static var canSignRSASHA2: Bool {
        libssh2_version(0x010b00) != nil
    }

    /// ssh's default Ciphers (OpenSSH 6.9 and later), as `ssh -G` prints them when the
    /// config sets none.
    static let opensshDefaultCiphers = ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
                                        "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]

    /// libssh2's own message for the last error on `session` (never contains secrets).
    static func lastError(_ session: OpaquePointer) -> (code: Int32, message: String) {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(session, &message, &length, 0)
        return (code, message.map { String(cString: $0) } ?? "")
    }

    /// A length-delimited string from libssh2 (keyboard-interactive names and prompts,
    /// which are not NUL-terminated on every version).
    static func text(_ pointer: UnsafeRawPointer?, _ length: Int) -> String {
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    static func lastErrno(_ session: OpaquePointer) -> Int32 {
        libssh2_session_last_errno(session)
    }

    /// Errors that mean the TCP connection is gone, not that a request was refused.
    static func isConnectionLoss(_ code: Int32) -> Bool {
        switch code {
        case LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_SEND,
             LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND, LIBSSH2_ERROR_SOCKET_NONE,
             LIBSSH2_ERROR_BAD_SOCKET, LIBSSH2_ERROR_SOCKET_TIMEOUT:
            return true
        default:
            return false
        }
    }

    /// "ED25519", "ECDSA", "RSA" as OpenSSH prints key types.
    static func displayKeyType(_ name: String?) -> String {
        switch name {
        case "ssh-ed25519": "ED25519"
        case "ssh-rsa": "RSA"
        case "ssh-dss": "DSA"
        case let name? where name.hasPrefix("ecdsa-"): "ECDSA"
        case let name?: name
        case nil: "unknown"
        }
    }

    /// "SHA256:…" (unpadded base64) of the server's host key, as ssh-keygen -l prints it.
    static func hostKeyFingerprint(_ session: OpaquePointer) -> String {
        guard let hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else { return "SHA256:?" }
        let bytes = UnsafeRawBufferPointer(start: hash, count: 32)
        var text = Base64.encode(Array(bytes))
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }
}
