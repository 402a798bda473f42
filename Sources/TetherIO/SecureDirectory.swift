import Glibc

/// Directories that hold sockets and state: created 0700, and refused when another user
/// owns them or they are open to others (tmux's rule for its socket directory).
public enum SecureDirectory {
    /// Creates `path` (and missing parents, 0700) or checks an existing one.
    /// `remedy` is added to a refusal (what the user can do instead, e.g. a variable
    /// that names another directory).
    public static func prepare(_ path: String, remedy: String? = nil) throws {
        do {
            try prepareChecked(path)
        } catch let error as TetherIOError where remedy != nil {
            throw TetherIOError("\(error.description); \(remedy!)")
        }
    }

    private static func prepareChecked(_ path: String) throws {
        var components: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            components.append(String(part))
            let partial = "/" + components.joined(separator: "/")
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw SystemError.last("mkdir \(partial)")
            }
        }
        try check(path)
    }

    /// Throws unless `path` is a directory owned by us with no group/other access.
    public static func check(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SystemError.last("stat \(path)") }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw TetherIOError("\(path) is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw TetherIOError("\(path) is owned by uid \(info.st_uid), not by uid \(geteuid()): refusing to use it")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw TetherIOError("\(path) is accessible by other users (mode \(String(info.st_mode & 0o777, radix: 8))): refusing to use it; run chmod 700 \(path)")
        }
    }
}

/// Where a host keeps its sockets (runtime) and its durable state.
public struct HostPaths: Sendable {
    /// Sockets, lock and pid files; like tmux's /tmp/tmux-UID. Lost on reboot, by design.
    public let runtimeDirectory: String
    /// The session table; survives reboots so vanished sessions are reported as Broken.
    public let stateDirectory: String
    /// Session configurations (`--configuration-dir`; nil: /etc/tether/configurations.d).
    public let configurationDirectory: String?
    /// Where transcripts go (`--syslog-socket`; nil: the system log, /dev/log).
    public let syslogSocket: String?

    public init(runtimeDirectory: String? = nil, stateDirectory: String? = nil,
                configurationDirectory: String? = nil, syslogSocket: String? = nil) {
        let env = Environment.self
        self.configurationDirectory = configurationDirectory
        self.syslogSocket = syslogSocket
        self.runtimeDirectory = runtimeDirectory ?? env.get("TETHER_RUNTIME_DIR") ?? "/tmp/tether-\(geteuid())"
        let home = env.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()
        self.stateDirectory = stateDirectory ?? env.get("TETHER_STATE_DIR") ?? "\(home)/.local/state/tether"
    }

    /// The options that hand these paths to another role of `tether-subsystem`.
    public var roleArguments: [String] {
        var arguments = ["--runtime-dir=\(runtimeDirectory)", "--state-dir=\(stateDirectory)"]
        if let configurationDirectory { arguments.append("--configuration-dir=\(configurationDirectory)") }
        if let syslogSocket { arguments.append("--syslog-socket=\(syslogSocket)") }
        return arguments
    }

    public var registrySocket: String { runtimeDirectory + "/registry.sock" }
    /// Where sshd's direct-streamlocal channels reach the registry (see `Gateway`).
    public var gatewaySocket: String { runtimeDirectory + "/gateway.sock" }
    public var registryLock: String { runtimeDirectory + "/registry.lock" }
    public var registryPIDFile: String { runtimeDirectory + "/registry.pid" }
    public var sessionsDirectory: String { runtimeDirectory + "/sessions" }
    public func runspaceSocket(_ instanceID: String) -> String { sessionsDirectory + "/\(instanceID).sock" }
    public func runspaceWorkDirectory(_ instanceID: String) -> String { sessionsDirectory + "/\(instanceID).d" }
    public var sessionTableFile: String { stateDirectory + "/sessions.json" }
    public var hostConfigFile: String { stateDirectory + "/host.json" }
    public var logFile: String { stateDirectory + "/host.log" }

    /// Creates and checks both directories and the sessions subdirectory.
    public func prepare() throws {
        // Another user may have made /tmp/tether-UID first (a squatter): say how to go elsewhere.
        try SecureDirectory.prepare(runtimeDirectory,
            remedy: "set TETHER_RUNTIME_DIR to a directory of your own that outlives your logins (e.g. export TETHER_RUNTIME_DIR=$HOME/.tether-run in the host's ~/.bashrc, which sshd's shell reads; not $XDG_RUNTIME_DIR, which logind removes at your last logout)")
        try SecureDirectory.prepare(stateDirectory, remedy: "set TETHER_STATE_DIR to a directory of your own")
        try SecureDirectory.prepare(sessionsDirectory)
    }
}

public enum Environment {
    public static func get(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let string = String(cString: value)
        return string.isEmpty ? nil : string
    }

    public static func homeDirectoryOfCurrentUser() -> String {
        if let entry = getpwuid(geteuid()), let dir = entry.pointee.pw_dir {
            return String(cString: dir)
        }
        return "/tmp"
    }

    public static func userName() -> String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            return String(cString: name)
        }
        return "uid\(geteuid())"
    }

    public static func hostName() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }
}
