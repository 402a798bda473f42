import Glibc
import CTetherPosix

/// Starting child processes with posix_spawn: no fork of a Swift runtime, explicit fds.
public enum Spawn {
    public struct Options {
        /// Child fd → parent fd to dup there (e.g. [0: devNull, 1: pipeWrite]).
        public var fileActions: [Int32: Int32] = [:]
        /// Open /dev/null on these child fds.
        public var devNull: [Int32] = []
        /// Start a new session (setsid): detached from the SSH login's terminal and signals.
        public var newSession = false
        /// Put the child in a new process group of its own (ignored with `newSession`).
        public var newProcessGroup = false
        /// Signals set back to their default action in the child (SIGPIPE, SIGINT…).
        public var defaultSignals: [Int32] = [SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGCHLD, SIGHUP]
        /// Working directory of the child (posix_spawn_file_actions_addchdir_np), if set.
        public var workingDirectory: String?
        /// Environment; nil inherits ours.
        public var environment: [String]?
        public init() {}
    }

    /// Spawns `path` with `arguments` (argv[0] included). Returns the child's pid.
    public static func spawn(path: String, arguments: [String], options: Options) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (child, parent) in options.fileActions.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, parent, child)
        }
        for child in options.devNull {
            posix_spawn_file_actions_addopen(&actions, child, "/dev/null", O_RDWR, 0)
        }
        if let directory = options.workingDirectory {
            tether_spawn_addchdir(&actions, directory)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if options.newSession {
            flags |= tether_posix_spawn_setsid_flag()
        } else if options.newProcessGroup {
            flags |= Int16(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, flags)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in options.defaultSignals { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environment = options.environment ?? currentEnvironment()
        let envp = environment.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }

        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SystemError("spawn \(path)", errno: result) }
        return pid
    }

    public static func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }

    /// `name` itself if it contains a slash (and is executable), else the first executable
    /// of that name in an absolute PATH directory (relative entries such as `.` are
    /// skipped: what runs must not depend on the working directory).
    public static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = Environment.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The absolute path of the running executable (to re-exec ourselves in another mode).
    /// If the file was replaced since we started (an upgrade, a rebuild), the path of the
    /// new file, without the kernel's " (deleted)" mark.
    public static func currentExecutable() -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        let path = String(decoding: buffer[0..<n], as: UTF8.self)
        let mark = " (deleted)"
        return path.hasSuffix(mark) ? String(path.dropLast(mark.count)) : path
    }

    /// Spawning this path runs the very image this process runs, even after its file was
    /// replaced or removed: a long-lived process (the registry) then starts children that
    /// speak exactly its protocol, not whatever an upgrade put on disk meanwhile.
    public static let runningImage = "/proc/self/exe"
}

/// How a child process ended, decoded from a wait status.
public enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus: Int32) {
        if tether_wifsignaled(waitStatus) != 0 {
            self = .signaled(tether_wtermsig(waitStatus))
        } else {
            self = .exited(tether_wexitstatus(waitStatus))
        }
    }

    /// The shell convention: the exit code, or 128 + signal number.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal) (\(Signals.name(signal)))"
        }
    }
}

public enum Signals {
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        case SIGQUIT: "SIGQUIT"
        case SIGKILL: "SIGKILL"
        case SIGTERM: "SIGTERM"
        case SIGSEGV: "SIGSEGV"
        case SIGPIPE: "SIGPIPE"
        case SIGABRT: "SIGABRT"
        default: "signal \(signal)"
        }
    }

    /// Sets `signal` to be ignored in this process (inherited across exec unless reset).
    public static func ignore(_ signal: Int32) {
        Glibc.signal(signal, SIG_IGN)
    }
}
