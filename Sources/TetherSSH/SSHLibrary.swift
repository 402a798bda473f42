import CLibSSH2
import CTetherSSHCipher
import TetherIO

/// Process-wide libssh2 setup.
public enum SSHLibrary {
    private static let lock = Lock()
    nonisolated(unsafe) private static var initialized = false

    /// `libssh2_init(0)` once; idempotent and thread-safe. `SSHConnection` calls it too.
    public static func initialize() {
        lock.withLock {
            guard !initialized else { return }
            _ = libssh2_init(0)
            // libssh2 1.11 batches AES-CTR blocks itself: the stopgap stays off there.
            if !isAtLeast1_11 { _ = tether_ssh_cipher_setup() }
            initialized = true
        }
    }

    /// True when libssh2's AES-CTR runs through the batched keystream (CTetherSSHCipher):
    /// this executable's EVP_Cipher is the one libssh2 is bound to.
    public static var batchesCipherBlocks: Bool { !isAtLeast1_11 && tether_ssh_cipher_setup() == 1 }

    /// The libssh2 linked at run time is 1.11 or later (rsa-sha2 signatures, its own CTR
    /// batching, AES-GCM and encrypt-then-MAC).
    public static var isAtLeast1_11: Bool { libssh2_version(0x010b00) != nil }

    /// The libssh2 headers this build was compiled against, as "1.10.0".
    public static var headerVersion: String {
        let number = tether_libssh2_header_version()
        return "\(number >> 16).\((number >> 8) & 0xff).\(number & 0xff)"
    }

    /// Keystream refills (4 KiB each) served to libssh2 so far; grows while data moves.
    public static var cipherKeystreamRefills: UInt { UInt(tether_ssh_cipher_refills()) }

    /// The linked libssh2's version at run time ("1.10.0").
    public static var version: String { LibSSH2.version }
}
