/// Supplies the passphrase of an encrypted private key. Never from argv or the environment.
public protocol PassphraseProvider: Sendable {
    /// The passphrase for the key at `keyPath`, or nil to skip that key.
    func passphrase(for keyPath: String) -> String?
}

/// Asks on /dev/tty with echo off, like ssh: "Enter passphrase for key 'PATH': ".
/// Returns nil when there is no terminal (the key is then skipped with a note).
public struct TTYPassphraseProvider: PassphraseProvider {
    public init() {}
    public func passphrase(for keyPath: String) -> String? {
        nil
    }
}
