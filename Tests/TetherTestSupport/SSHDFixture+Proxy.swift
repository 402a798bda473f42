/// Reaching a fixture's sshd through something in front of it (a `TCPProxy`).
extension SSHDFixture {
    /// `sshArguments` aimed at `port` on 127.0.0.1 instead of sshd's own port. The host
    /// key is still checked strictly, against this fixture's known_hosts entry
    /// (HostKeyAlias names it), so a proxy can't weaken the test's host verification.
    /// `options` are extra `-o` settings, e.g. ["ServerAliveInterval=1"].
    public func sshArguments(throughPort port: UInt16, options: [String] = []) -> [String] {
        var arguments = sshArguments
        if let index = arguments.firstIndex(of: "-p"), index + 1 < arguments.count {
            arguments[index + 1] = String(port)
        }
        arguments += ["-o", "HostKeyAlias=[127.0.0.1]:\(self.port)"]
        for option in options { arguments += ["-o", option] }
        return arguments
    }

    /// `ssh … -s user@127.0.0.1 <subsystem>` through `port` (see `sshArguments(throughPort:)`).
    public func subsystemCommand(throughPort port: UInt16, subsystem: String = "tether", options: [String] = []) -> [String] {
        ["ssh"] + sshArguments(throughPort: port, options: options) + ["-s", destination, subsystem]
    }
}
