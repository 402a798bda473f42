import Glibc

/// What we can tell about a private key file without decrypting it: so we ask for a
/// passphrase only when needed, skip RSA on libssh2 < 1.11 with a clear reason, and match
/// agent keys to files for IdentitiesOnly.
struct IdentityFile {
    enum Format: Equatable {
        /// "-----BEGIN OPENSSH PRIVATE KEY-----" (ssh-keygen's default since 7.8).
        case openSSH
        /// "-----BEGIN RSA/EC/DSA PRIVATE KEY-----" or PKCS#8.
        case pem
        /// Only a public key ("TYPE BASE64 comment", or PATH.pub with no PATH): as in ssh,
        /// it selects that key in the agent and is never read as a private key.
        case publicOnly
    }

    let path: String
    let format: Format
    /// "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", … when known.
    let keyType: String?
    let isEncrypted: Bool
    /// The public key blob, from the OpenSSH header or PATH.pub; nil when neither has it.
    let publicKeyBlob: [UInt8]?

    var isRSA: Bool { keyType == "ssh-rsa" }
    /// FIDO/U2F keys: their signatures need the security key, which libssh2 can't drive.
    var isSecurityKey: Bool { keyType?.hasPrefix("sk-") ?? false }

    enum LoadError: Error, Equatable {
        case missing
        case unreadable(String)
        case notAKey(String)
    }

    static func load(_ path: String) -> Result<IdentityFile, LoadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR {
                // ssh: a key in the agent can be named by its .pub alone.
                if let blob = readPublicKeyFile(path + ".pub") {
                    return .success(IdentityFile(path: path, format: .publicOnly, keyType: keyTypeName(ofBlob: blob),
                                                 isEncrypted: false, publicKeyBlob: blob))
                }
                return .failure(.missing)
            }
            return .failure(.unreadable(String(cString: strerror(errno))))
        }
        defer { close(fd) }
        let bytes: [UInt8]
        do {
            guard let all = try ConfigFileReader.readAll(fd, path: path) else {
                return .failure(.unreadable("it is a directory"))
            }
            bytes = all
        } catch {
            return .failure(.unreadable("\(error)"))
        }
        return parse(bytes, path: path, publicFromFile: readPublicKeyFile(path + ".pub"))
    }

    /// A private key's text (from a file, or held in memory by a library caller: then
    /// `path` is only its label).
    static func parse(_ bytes: [UInt8], path: String, publicFromFile: [UInt8]? = nil) -> Result<IdentityFile, LoadError> {
        let text = String(decoding: bytes, as: UTF8.self)
        if let body = armored(text, label: "OPENSSH PRIVATE KEY") {
            guard let decoded = Base64.decode(body), let header = parseOpenSSHHeader(decoded) else {
                return .failure(.notAKey("its OpenSSH key body is damaged"))
            }
            return .success(IdentityFile(path: path, format: .openSSH,
                                         keyType: keyTypeName(ofBlob: header.publicKey),
                                         isEncrypted: header.cipher != "none",
                                         publicKeyBlob: header.publicKey))
        }
        for (label, type) in [("RSA PRIVATE KEY", "ssh-rsa"), ("EC PRIVATE KEY", nil), ("DSA PRIVATE KEY", "ssh-dss"),
                              ("ENCRYPTED PRIVATE KEY", nil), ("PRIVATE KEY", nil)] as [(String, String?)] {
            guard text.contains("-----BEGIN \(label)-----") else { continue }
            let encrypted = label == "ENCRYPTED PRIVATE KEY" || text.contains("Proc-Type: 4,ENCRYPTED")
            let blob = publicFromFile
            return .success(IdentityFile(path: path, format: .pem,
                                         keyType: blob.flatMap(keyTypeName(ofBlob:)) ?? type,
                                         isEncrypted: encrypted, publicKeyBlob: blob))
        }
        if let blob = publicKey(inText: text) {
            return .success(IdentityFile(path: path, format: .publicOnly, keyType: keyTypeName(ofBlob: blob),
                                         isEncrypted: false, publicKeyBlob: blob))
        }
        return .failure(.notAKey("it is not a private key file (no '-----BEGIN … PRIVATE KEY-----' line)"))
    }

    /// The base64 body between BEGIN/END lines.
    private static func armored(_ text: String, label: String) -> Substring? {
        guard let begin = text.firstRange(of: "-----BEGIN \(label)-----"),
              let end = text[begin.upperBound...].firstRange(of: "-----END \(label)-----")
        else { return nil }
        return text[begin.upperBound..<end.lowerBound]
    }

    /// "openssh-key-v1\0", cipher, kdf, kdf options, key count, first public key.
    private static func parseOpenSSHHeader(_ bytes: [UInt8]) -> (cipher: String, publicKey: [UInt8])? {
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard bytes.starts(with: magic) else { return nil }
        var reader = SSHWireReader(bytes, offset: magic.count)
        guard let cipher = reader.text(), reader.text() != nil, reader.string() != nil,
              let count = reader.uint32(), count >= 1, let publicKey = reader.string()
        else { return nil }
        return (cipher, publicKey)
    }

    /// "TYPE BASE64 comment" from a .pub file.
    private static func readPublicKeyFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let bytes = try? ConfigFileReader.readAll(fd, path: path) else { return nil }
        return publicKey(inText: String(decoding: bytes, as: UTF8.self))
    }

    /// The blob of "TYPE BASE64 [comment]" when TYPE matches the blob's own type.
    static func publicKey(inText text: String) -> [UInt8]? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
        guard fields.count >= 2, let blob = Base64.decode(fields[1]),
              keyTypeName(ofBlob: blob) == String(fields[0]) else { return nil }
        return blob
    }
}
