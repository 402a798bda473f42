import Glibc
import TetherIO

/// A real OpenSSH sshd on a free loopback port, serving the freshly built
/// `tether-subsystem` with its own runtime and state directories — one fixture is one
/// "computer". Everything lives in a fresh temp directory (keys, configs, logs, sockets).
///
///     let host = try SSHDFixture()
///     defer { host.stop() }
///     let client = try ProtocolTestClient(fixture: host)       // ssh -s … tether
///     // or: ssh -F host.sshConfigPath host.hostAlias …
///
/// `stop()` (also run by deinit) kills sshd, its connections, and every registry,
/// runspace and interpreter of this fixture's runtime directory, then deletes the
/// directory (kept when TETHER_KEEP_FIXTURES=1, to read the logs).
public final class SSHDFixture {
    public struct Options: Sendable {
        /// The `Host` alias in `sshConfigPath` (give two fixtures different names to use
        /// both from one ssh_config).
        public var hostAlias: String
        /// Appended to the subsystem's command line after --runtime-dir/--state-dir.
        public var subsystemArguments: [String]
        /// Set for the subsystem (and inherited by the registry and runspaces it starts),
        /// e.g. ["TETHER_MIN_IDLE_TIMEOUT": "2"].
        public var subsystemEnvironment: [String: String]
        /// The `tether-subsystem` to serve; default: the one built with the tests.
        public var subsystemPath: String?
        /// More sshd_config lines (e.g. "AllowStreamLocalForwarding no").
        public var sshdConfig: [String] = []
        /// Users allowed to log in besides the one running the tests.
        public var extraUsers: [String] = []
        /// sshd authenticates through PAM (keyboard-interactive needs it).
        public var usePAM = false

        public init(hostAlias: String = "tether-test", subsystemArguments: [String] = [],
                    subsystemEnvironment: [String: String] = [:], subsystemPath: String? = nil,
                    sshdConfig: [String] = []) {
            self.sshdConfig = sshdConfig
            self.hostAlias = hostAlias
            self.subsystemArguments = subsystemArguments
            self.subsystemEnvironment = subsystemEnvironment
            self.subsystemPath = subsystemPath
        }
    }

    public let configuration: SSHDConfiguration
    /// The temp directory holding everything of this fixture.
    public let directory: String
    public let runtimeDirectory: String
    public let stateDirectory: String
    public let subsystemPath: String
    public private(set) var sshdPID: pid_t = 0
    private var stopped = false

    public var port: UInt16 { configuration.port }
    public var user: String { configuration.user }
    public var hostAlias: String { configuration.hostAlias }
    public var clientKeyPath: String { configuration.clientKeyPath }
    public var knownHostsPath: String { configuration.knownHostsPath }
    public var sshConfigPath: String { configuration.sshConfigPath }
    public var sshdLogPath: String { configuration.logPath }
    /// `user@127.0.0.1`, the destination for `ssh` with `sshArguments`.
    public var destination: String { "\(user)@127.0.0.1" }

    /// Options for the OpenSSH client: our key, our known_hosts, no prompts, and no
    /// ~/.ssh/config of whoever runs the tests.
    public var sshArguments: [String] {
        ["-F", "/dev/null", "-p", String(port), "-i", clientKeyPath,
         "-o", "UserKnownHostsFile=\(knownHostsPath)", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", "ConnectTimeout=10"]
    }

    /// The full argv of `ssh -s user@127.0.0.1 tether` against this fixture.
    public var subsystemCommand: [String] { ["ssh"] + sshArguments + ["-s", destination, "tether"] }

    public init(_ options: Options = Options()) throws {
        Processes.ignoreSIGPIPE()
        let sshd = try SSHDFixture.locateSSHD()
        subsystemPath = try options.subsystemPath ?? PackageLayout.builtProduct("tether-subsystem")
        AbandonedFixtures.sweepOnce()
        directory = try SSHDFixture.makeTemporaryDirectory()
        runtimeDirectory = directory + "/runtime"
        stateDirectory = directory + "/state"

        var command: [String] = []
        if !options.subsystemEnvironment.isEmpty {
            command = ["/usr/bin/env"] + options.subsystemEnvironment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        }
        command += [subsystemPath, "--runtime-dir", runtimeDirectory, "--state-dir", stateDirectory]
        command += options.subsystemArguments
        if let bad = command.first(where: { $0.isEmpty || $0.contains(where: { " \t\n'\"\\$`;&|<>".contains($0) }) }) {
            throw TestSupportError("subsystem command part \"\(bad)\" has whitespace or shell characters; sshd passes the line to a shell unquoted")
        }
        var config = SSHDConfiguration(directory: directory, port: 0, user: Environment.userName(),
                                       hostAlias: options.hostAlias, tetherSubsystemCommand: command)
        config.extraSSHDConfig = options.sshdConfig
        config.extraUsers = options.extraUsers
        config.usePAM = options.usePAM
        do {
            try AbandonedFixtures.claim(directory)
            try SSHDFixture.generateKeys(config)
            try SSHDFixture.preparePrivilegeSeparationDirectory()
            var lastFailure = ""
            for _ in 0..<5 {
                config.port = try SSHDFixture.freeLoopbackPort()
                try SSHDFixture.writeFiles(config)
                switch try SSHDFixture.launch(sshd: sshd, config: config) {
                case .listening(let pid):
                    self.configuration = config
                    self.sshdPID = pid
                    return
                case .failed(let log):
                    lastFailure = log
                    // Another process may have taken the port between probe and bind.
                    if !log.contains("Address already in use") { break }
                }
            }
            throw TestSupportError("sshd did not start (log \(config.logPath)):\n\(lastFailure)")
        } catch {
            if Environment.get("TETHER_KEEP_FIXTURES") != "1" { _ = try? Processes.run("/bin/rm", ["-rf", directory]) }
            throw error
        }
    }

    deinit { stop() }

    // MARK: Tether's processes on this "computer"

    /// Live processes running the subsystem binary for this fixture's runtime directory.
    public func tetherProcesses() -> [ProcessEntry] {
        let table = ProcessTable.snapshot()
        return ProcessTable.processes(mentioning: runtimeDirectory, in: table).filter { isSubsystemBinary($0.pid) }
    }

    /// The registry's pid, if one runs.
    public func registryPID() -> pid_t? { registryPIDs().first }

    /// Every registry of this fixture (a test of start races expects exactly one).
    public func registryPIDs() -> [pid_t] { tetherProcesses().filter { role(of: $0) == "registry" }.map(\.pid).sorted() }

    /// The runspace hosts (one per live session).
    public func runspacePIDs() -> [pid_t] { tetherProcesses().filter { role(of: $0) == "runspace" }.map(\.pid).sorted() }

    /// The stdio multiplexers sshd runs, one per open `tether` connection.
    public func subsystemPIDs() -> [pid_t] { tetherProcesses().filter { role(of: $0) == "serve" }.map(\.pid).sorted() }

    /// The interpreter (bash) a runspace host drives.
    public func interpreterPID(ofRunspace runspace: pid_t) -> pid_t? {
        let children = ProcessTable.children(of: runspace)
        return (children.first { $0.arguments.first?.hasSuffix("bash") == true } ?? children.first)?.pid
    }

    /// The runspace host serving session `instanceID`.
    public func runspacePID(instanceID: String) -> pid_t? {
        tetherProcesses().first { role(of: $0) == "runspace" && $0.arguments.contains { $0.contains(instanceID) } }?.pid
    }

    /// What sshd logged so far (connections, auth, subsystem starts).
    public var sshdLog: String { String(decoding: Descriptors.readFile(sshdLogPath) ?? [], as: UTF8.self) }

    /// The host processes' own log, if they write one.
    public var hostLog: String {
        String(decoding: Descriptors.readFile(HostPaths(runtimeDirectory: runtimeDirectory, stateDirectory: stateDirectory).logFile) ?? [], as: UTF8.self)
    }

    private func role(of process: ProcessEntry) -> String {
        let args = process.arguments.dropFirst()
        if args.contains("registry") { return "registry" }
        if args.contains("runspace") { return "runspace" }
        return "serve"
    }

    private func isSubsystemBinary(_ pid: pid_t) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return false }
        var exe = String(decoding: buffer[0..<n], as: UTF8.self)
        if exe.hasSuffix(" (deleted)") { exe.removeLast(" (deleted)".count) }  // rebuilt meanwhile
        return exe == subsystemPath
    }

    // MARK: Stopping

    /// Kills sshd, every connection it serves, and every host process of this fixture's
    /// runtime directory (registry, runspaces, their interpreters and commands); waits
    /// until they are gone; removes the directory. Safe to call twice.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        let table = ProcessTable.snapshot()
        var roots = ProcessTable.processes(mentioning: runtimeDirectory, in: table).map(\.pid)
        if sshdPID > 0 { roots.append(sshdPID) }
        let doomed = Set(roots + ProcessTable.descendants(of: roots, in: table).map(\.pid))
        Processes.killAll(Array(doomed))
        if sshdPID > 0 { _ = try? Processes.waitForChild(sshdPID, timeout: 5) }
        // Anything started while we were killing (a registry spawned by a dying subsystem).
        let stragglers = ProcessTable.processes(mentioning: runtimeDirectory).map(\.pid)
        Processes.killAll(stragglers + ProcessTable.descendants(of: stragglers).map(\.pid))
        if Environment.get("TETHER_KEEP_FIXTURES") != "1" {
            _ = try? Processes.run("/bin/rm", ["-rf", directory])
        }
    }

    // MARK: Setup steps

    private static func locateSSHD() throws -> String {
        for candidate in [Environment.get("TETHER_SSHD"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"].compactMap({ $0 })
        where access(candidate, X_OK) == 0 {
            return candidate
        }
        throw TestSupportError("OpenSSH sshd not found (looked in /usr/sbin, /usr/local/sbin, $TETHER_SSHD); install it: scripts/setup")
    }

    private static func makeTemporaryDirectory() throws -> String {
        // Short, because Unix socket paths (runtime/sessions/<uuid>.sock) must fit 108 bytes.
        var template = Array("/tmp/tfx-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError.last("mkdtemp /tmp/tfx-XXXXXX")
        }
        return String(cString: made)
    }

    private static func generateKeys(_ config: SSHDConfiguration) throws {
        for (type, path) in [("ed25519", config.hostKeyPaths[0]), ("ecdsa", config.hostKeyPaths[1]), ("ed25519", config.clientKeyPath)] {
            try Processes.check("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "tether-test-\(type)", "-f", path])
        }
        let clientPublic = Descriptors.readFile(config.clientKeyPath + ".pub") ?? []
        try Descriptors.writeFile(config.authorizedKeysPath, String(decoding: clientPublic, as: UTF8.self), mode: 0o600)
    }

    /// sshd running as root insists on its privilege separation directory.
    private static func preparePrivilegeSeparationDirectory() throws {
        guard geteuid() == 0 else { return }
        if mkdir("/run/sshd", 0o755) != 0 && errno != EEXIST { throw SystemError.last("mkdir /run/sshd") }
    }

    private static func writeFiles(_ config: SSHDConfiguration) throws {
        try Descriptors.writeFile(config.sshdConfigPath, config.sshdConfig, mode: 0o600)
        try Descriptors.writeFile(config.sshConfigPath, config.sshConfig, mode: 0o600)
        let publicKeys = config.hostKeyPaths.map { String(decoding: Descriptors.readFile($0 + ".pub") ?? [], as: UTF8.self) }
        try Descriptors.writeFile(config.knownHostsPath, config.knownHosts(publicKeys: publicKeys), mode: 0o600)
    }

    /// A port nothing listens on right now (the kernel's pick for port 0).
    public static func freeLoopbackPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw SystemError.last("bind 127.0.0.1:0") }
        return UInt16(bigEndian: address.sin_port)
    }

    private enum Launch {
        case listening(pid_t)
        case failed(String)
    }

    /// Starts `sshd -D -e` and reads its stderr until "Server listening" (ready) or its
    /// exit (failed); afterwards a drain thread copies the rest into the log file.
    private static func launch(sshd: String, config: SSHDConfiguration) throws -> Launch {
        let output = try Descriptors.pipe()
        let logFD = open(config.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logFD >= 0 else { throw SystemError.last("open \(config.logPath)") }
        var options = Spawn.Options()
        options.fileActions = [1: output.write, 2: output.write]
        options.devNull = [0]
        // setpriv --pdeathsig: sshd dies with the test process even when that is killed
        // before it can stop the fixture (AbandonedFixtures sweeps the rest later).
        var command = [sshd, "-D", "-e", "-f", config.sshdConfigPath]
        if access("/usr/bin/setpriv", X_OK) == 0 {
            command = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] + command
        }
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: command[0], arguments: command, options: options)
        } catch {
            close(output.read); close(output.write); close(logFD)
            throw error
        }
        close(output.write)

        let deadline = Deadline(secondsFromNow: 15)
        var seen: [UInt8] = []
        while true {
            guard let chunk = try Descriptors.readChunk(output.read, until: deadline) else {
                _ = kill(pid, SIGKILL)
                _ = try? Processes.waitForChild(pid, timeout: 5)
                close(output.read); close(logFD)
                return .failed("no \"Server listening\" line within 15 s:\n" + String(decoding: seen, as: UTF8.self))
            }
            _ = chunk.withUnsafeBytes { write(logFD, $0.baseAddress, chunk.count) }
            seen += chunk
            if chunk.isEmpty {
                _ = try? Processes.waitForChild(pid, timeout: 5)
                close(output.read); close(logFD)
                return .failed(String(decoding: seen, as: UTF8.self))
            }
            if String(decoding: seen, as: UTF8.self).contains("Server listening on 127.0.0.1 port \(config.port)") {
                LogDrain.start(pipe: output.read, logFile: logFD)
                return .listening(pid)
            }
        }
    }
}
