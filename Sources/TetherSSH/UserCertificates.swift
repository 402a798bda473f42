import Glibc

/// OpenSSH user certificates for the libssh2 transport. libssh2 1.11 signs a certificate
/// login with the certificate's private key (`libssh2_userauth_publickey_fromfile_ex`
/// given the `-cert.pub` file as the public key); 1.10 cannot (measured: 1.10 "Callback
/// returned error" for an ED25519 certificate, "Username/PublicKey combination invalid"
/// for an RSA one, where 1.11.1 logs in with both). ssh pairs a certificate with an
/// identity file as this does: `KEY-cert.pub` beside `KEY`, or a CertificateFile whose
/// certified key is KEY's public key.
enum UserCertificates {
    /// The linked libssh2 can log in with a certificate.
    static var libssh2CanUse: Bool { SSHLibrary.isAtLeast1_11 }

    /// The certificate to offer with the identity file at `keyPath` (public key blob
    /// `publicKey`), or nil.
    static func certificate(for keyPath: String, publicKey: [UInt8]?, certificateFiles: [String]) -> String? {
        if access(keyPath + "-cert.pub", R_OK) == 0 { return keyPath + "-cert.pub" }
        guard let publicKey, let keyFields = fieldsAfterType(publicKey) else { return nil }
        return certificateFiles.first { path in
            guard let blob = certificateBlob(path), let certified = certifiedKeyFields(blob) else { return false }
            return certified.starts(with: keyFields)
        }
    }

    /// CertificateFile entries that no identity file (with its private key) pairs with:
    /// the libssh2 transport can't offer them (a key only in the agent would need
    /// libssh2_agent_sign, which Tether doesn't drive), so ssh must.
    static func unpaired(_ certificateFiles: [String], identities: [IdentityFile]) -> [String] {
        let keys = identities.filter { $0.format != .publicOnly }.compactMap(\.publicKeyBlob).compactMap(fieldsAfterType)
        return certificateFiles.filter { path in
            guard access(path, R_OK) == 0 else { return false }
            guard let blob = certificateBlob(path), let certified = certifiedKeyFields(blob) else { return true }
            return !keys.contains { certified.starts(with: $0) }
        }
    }

    /// The blob of a `-cert.pub` file ("TYPE-cert-v01@openssh.com BASE64 comment").
    private static func certificateBlob(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let bytes = try? ConfigFileReader.readAll(fd, path: path),
              let blob = IdentityFile.publicKey(inText: String(decoding: bytes, as: UTF8.self)),
              keyTypeName(ofBlob: blob)?.contains("-cert-v01@openssh.com") == true else { return nil }
        return blob
    }

    /// A public key blob without its leading type string: the key's own fields.
    private static func fieldsAfterType(_ blob: [UInt8]) -> ArraySlice<UInt8>? {
        var reader = SSHWireReader(blob, offset: 0)
        guard reader.string() != nil else { return nil }
        return blob[reader.offset...]
    }

    /// A certificate blob is: string type, string nonce, then the certified key's fields.
    private static func certifiedKeyFields(_ blob: [UInt8]) -> ArraySlice<UInt8>? {
        var reader = SSHWireReader(blob, offset: 0)
        guard reader.string() != nil, reader.string() != nil else { return nil }
        return blob[reader.offset...]
    }
}
