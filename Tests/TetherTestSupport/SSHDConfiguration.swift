/// The text of the throwaway sshd's files. Kept in step with `scripts/dev-sshd`, which
/// writes the same configuration for people (the README demo) rather than tests.
public struct SSHDConfiguration: Sendable {
    public var directory: String
    public var port: UInt16
    public var user: String
    public var hostAlias: String
    /// The full command line sshd runs for `ssh -s HOST tether` (no spaces in any part:
    /// sshd hands it to the user's shell unquoted).
    public var tetherSubsystemCommand: [String]
    /// More sshd_config lines (e.g. "AllowStreamLocalForwarding no").
    public var extraSSHDConfig: [String] = []
    /// Users allowed to log in besides `user` (a throwaway password user).
    public var extraUsers: [String] = []
    /// sshd authenticates through PAM (keyboard-interactive needs it).
    public var usePAM = false

    public var hostKeyPaths: [String] { ["\(directory)/ssh_host_ed25519_key", "\(directory)/ssh_host_ecdsa_key"] }
    public var clientKeyPath: String { "\(directory)/client_ed25519" }
    public var authorizedKeysPath: String { "\(directory)/authorized_keys" }
    public var knownHostsPath: String { "\(directory)/known_hosts" }
    public var sshdConfigPath: String { "\(directory)/sshd_config" }
    public var sshConfigPath: String { "\(directory)/ssh_config" }
    public var pidFilePath: String { "\(directory)/sshd.pid" }
    public var logPath: String { "\(directory)/sshd.log" }

    public var sshdConfig: String {
        """
        # A throwaway sshd on loopback for Tether's end-to-end tests. Key logins only, for
        # one user; the `tether` subsystem is the freshly built binary with private
        # runtime and state directories, so every fixture is its own "computer".
        Port \(port)
        ListenAddress 127.0.0.1
        \(hostKeyPaths.map { "HostKey \($0)" }.joined(separator: "\n"))
        PidFile \(pidFilePath)
        AuthorizedKeysFile \(authorizedKeysPath)
        AllowUsers \(([user] + extraUsers).joined(separator: " "))
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM \(usePAM ? "yes" : "no")
        StrictModes no
        PermitRootLogin prohibit-password
        MaxStartups 200
        MaxSessions 100
        PrintMotd no
        LogLevel VERBOSE
        Subsystem tether \(tetherSubsystemCommand.joined(separator: " "))
        Subsystem echo /bin/cat
        \(extraSSHDConfig.joined(separator: "\n"))

        """
    }

    /// `ssh -F <this file> <hostAlias>` reaches the fixture.
    public var sshConfig: String {
        """
        Host \(hostAlias)
            HostName 127.0.0.1
            Port \(port)
            User \(user)
            IdentityFile \(clientKeyPath)
            UserKnownHostsFile \(knownHostsPath)
            StrictHostKeyChecking yes
            IdentitiesOnly yes
            BatchMode yes

        """
    }

    /// known_hosts lines for the host keys (given as their `.pub` contents).
    public func knownHosts(publicKeys: [String]) -> String {
        publicKeys.flatMap { key -> [String] in
            let fields = key.split(separator: " ").prefix(2).joined(separator: " ")
            return ["[127.0.0.1]:\(port) \(fields)", "[localhost]:\(port) \(fields)"]
        }.joined(separator: "\n") + "\n"
    }
}
