/// One session configuration, as a host admin wrote it in
/// `/etc/tether/configurations.d/NAME.conf` (or the built-in `bash`). What a session of it
/// may do and who may open one is decided here, on the host; clients only name it.
public struct SessionConfiguration: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// A persistent bash, full shell access.
        case shell
        /// No shell: each command line is matched against `commands` and run with execve.
        case restricted
    }

    public var name: String
    public var kind: Kind = .shell
    public var description: String = ""
    /// `Enabled no` takes a configuration (the built-in `bash` too) off the host.
    public var enabled = true
    public var access = AccessRules()
    /// `Environment NAME=VALUE`, in file order.
    public var environment: [EnvironmentSetting] = []
    /// Where commands start; `%h` is the user's home directory, `%u` the user's name.
    public var workingDirectory: String?
    /// `shell` only: sourced once when the session's bash starts.
    public var startupScript: String?
    /// The idle timeout a session gets when the client asks for none, and the most it may ask.
    public var idleTimeout: Double?
    public var maxIdleTimeout: Double?
    /// `block` or `drop`: the default while nobody reads output.
    public var outputBuffering: String?
    public var maxSessionsPerUser: Int?
    /// Every command goes to the system log (`Transcript yes`).
    public var transcript = false
    /// `restricted` only: what may run.
    public var commands: [CommandRule] = []
    /// The file it came from (nil for the built-in).
    public var file: String?
    /// The line each single-valued keyword was set on (for diagnostics).
    public var lines: [String: Int] = [:]

    public init(name: String, kind: Kind = .shell) {
        self.name = name
        self.kind = kind
    }

    /// The configuration every host has unless a `bash.conf` replaces it.
    public static let builtInName = "bash"
    public static var builtIn: SessionConfiguration {
        var configuration = SessionConfiguration(name: builtInName, kind: .shell)
        configuration.description = "bash, full shell access (built in)"
        return configuration
    }

    /// `%h` and `%u` in the working directory, for this user.
    public func resolvedWorkingDirectory(home: String, user: String) -> String? {
        workingDirectory.map { $0.replacing("%h", with: home).replacing("%u", with: user) }
    }
}

public struct EnvironmentSetting: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
    public var assignment: String { name + "=" + value }
}

/// `Command PATH [ARGPATTERN…]`: PATH runs, with exactly as many arguments as patterns,
/// each matching its glob — or any number more when the last pattern is `**`.
public struct CommandRule: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var patterns: [String]
    public var admitsMore: Bool
    /// Where the rule is written, for messages ("ops.conf:7").
    public var location: String
    /// Its line in the file.
    public var line: Int { Int(location.split(separator: ":").last ?? "") ?? 0 }

    public init(path: String, patterns: [String], admitsMore: Bool, location: String) {
        self.path = path
        self.patterns = patterns
        self.admitsMore = admitsMore
        self.location = location
    }

    /// The last component of `path`: what a user may type instead of the full path.
    public var commandName: String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    public var description: String {
        (["Command", path] + patterns + (admitsMore ? ["**"] : [])).joined(separator: " ")
    }
}
