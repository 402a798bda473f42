/// Resolves what the user typed into an `SSHTarget`, the way OpenSSH reads ~/.ssh/config.
public enum SSHConfig {
    /// Parses "user@host:port", "host", "user@host", "[v6]:port"; applies the ssh config file
    /// (overrides.configFile, else $TETHER_SSH_CONFIG, else ~/.ssh/config; missing file = empty)
    /// for Host patterns (*, ?, !negation, multiple patterns; first value wins like OpenSSH),
    /// HostName, Port, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile,
    /// StrictHostKeyChecking, ConnectTimeout, ServerAliveInterval; then overrides win.
    public static func resolve(_ destination: String, overrides: SSHOverrides) throws -> SSHTarget {
        throw SSHError(.configuration, host: destination, "ssh config resolution is not implemented yet")
    }
}
