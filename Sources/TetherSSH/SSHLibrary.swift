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
            _ = tether_ssh_cipher_setup()
            initialized = true
        }
    }

    /// True when libssh2's AES-CTR runs through the batched keystream (CTetherSSHCipher):
    /// this executable's EVP_Cipher is the one libssh2 is bound to.
    public static var batchesCipherBlocks: Bool { tether_ssh_cipher_setup() == 1 }

    /// Keystream refills (4 KiB each) served to libssh2 so far; grows while data moves.
    public static var cipherKeystreamRefills: UInt { UInt(tether_ssh_cipher_refills()) }

    /// The linked libssh2's version at run time ("1.10.0").
    public static var version: String { LibSSH2.version }
}
