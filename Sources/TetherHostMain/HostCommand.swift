import ArgumentParser
import TetherConfiguration
import TetherIO
import TetherProtocol
import TetherRegistry
import TetherRunspace
import TetherSubsystem

/// `tether-subsystem`: one binary, three process roles. sshd runs the default role (the
/// stdio multiplexer); the registry and the runspace hosts are the same binary re-executed
/// in another mode, so an install is one file and every role speaks the same protocol build.
public struct HostCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tether-subsystem",
        abstract: "The host side of Tether: what sshd runs for the `tether` subsystem.",
        discussion: """
        sshd starts it per connection (see sshd_config.d/tether.conf); it speaks
        the Tether session protocol on stdin/stdout and relays to the per-user
        registry and to one runspace host per session. The registry and runspace
        modes are started by Tether itself; you run them by hand only to debug.

        Examples:
          tether-subsystem                       # what sshd runs
          ssh -s host tether                     # the same, through OpenSSH
          tether-subsystem --runtime-dir /tmp/t  # a private set of sessions (tests)
          tether-subsystem check-configurations  # validate /etc/tether/configurations.d
        """,
        version: tetherVersionLine("tether-subsystem"),
        subcommands: [Serve.self, Registry.self, Runspace.self, CheckConfigurations.self],
        defaultSubcommand: Serve.self
    )
    public init() {}
}

/// Options every role shares: where sockets and state live.
public struct DirectoryOptions: ParsableArguments {
    @Option(name: .customLong("runtime-dir"), help: ArgumentHelp(
        "Directory for sockets, lock and pid files (0700, owned by you).",
        discussion: "Default: $TETHER_RUNTIME_DIR, else /tmp/tether-UID.", valueName: "DIR"))
    public var runtimeDirectory: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "Directory for the durable session table.",
        discussion: "Default: $TETHER_STATE_DIR, else ~/.local/state/tether.", valueName: "DIR"))
    public var stateDirectory: String?

    @Option(name: .customLong("configuration-dir"), help: ArgumentHelp(
        "Directory of session configurations (NAME.conf, owned by root).",
        discussion: "Default: \(ConfigurationDirectory.defaultPath).", valueName: "DIR"))
    public var configurationDirectory: String?

    @Option(name: .customLong("syslog-socket"), help: ArgumentHelp(
        "Where transcripts (Transcript yes) are sent.",
        discussion: "A syslog datagram socket; default /dev/log, the system log. Tests point it at their own.",
        valueName: "PATH"))
    public var syslogSocket: String?

    public init() {}

    public var paths: HostPaths {
        HostPaths(runtimeDirectory: runtimeDirectory, stateDirectory: stateDirectory,
                  configurationDirectory: configurationDirectory, syslogSocket: syslogSocket)
    }
}

extension HostCommand {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Speak the session protocol on stdin/stdout (what sshd runs; the default).")
        @OptionGroup var directories: DirectoryOptions
        @Flag(help: .hidden)
        var gateway = false
        func run() throws {
            // A relay of 256 KiB records: its heap keeps them (the runspace and the
            // registry, long-lived and one per session or user, keep glibc's defaults).
            StreamingHeap.configure()
            // --gateway: started by the registry on a connection to its gateway socket.
            Subsystem.run(paths: directories.paths, route: gateway ? .gateway : .subsystem)
        }
    }

    struct Registry: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "registry",
            abstract: "Run the per-user session registry (started on demand by the subsystem).")
        @OptionGroup var directories: DirectoryOptions
        @Option(name: .customLong("ready-fd"), help: "Write \"ok\" to this descriptor once listening.")
        var readyFD: Int32?
        func run() throws {
            RegistryServer.run(paths: directories.paths, readyFD: readyFD)
        }
    }

    struct Runspace: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runspace",
            abstract: "Run one session's runspace host (started by the registry).")
        @OptionGroup var directories: DirectoryOptions
        @Option(name: .customLong("instance-id"), help: "The session's instance id (UUID).")
        var instanceID: String
        @Option(help: "The session's name.")
        var name: String = ""
        @Option(help: "The session configuration (built in: bash; others from the configuration directory).")
        var configuration: String = "bash"
        @Option(name: .customLong("output-buffering"), help: "block or drop, while nobody reads output.")
        var outputBuffering: String = "block"
        @Option(name: .customLong("buffer-limit"), help: "Bytes of unacknowledged output to keep.")
        var bufferLimit: Int = RunspaceOptions.defaultBufferLimit
        @Option(name: .customLong("job-limit"), help: "Jobs that may run at once.")
        var jobLimit: Int = JobLimits.defaultConcurrent
        @Option(name: .customLong("ready-fd"), help: "Write \"ok\" or \"error: …\" to this descriptor once ready.")
        var readyFD: Int32?
        @Option(name: .customLong("idle-timeout"), help: "The session's idle timeout in seconds (the registry applies it; kept to describe the session).")
        var idleTimeout: Double?

        func validate() throws {
            guard OutputBuffering(rawValue: outputBuffering) != nil else {
                throw ValidationError("--output-buffering must be block or drop, not \(outputBuffering)")
            }
            if let problem = BufferLimit.problem(bufferLimit) { throw ValidationError("--buffer-limit: \(problem)") }
            guard jobLimit > 0 else { throw ValidationError("--job-limit must be positive") }
        }

        func run() throws {
            var options = RunspaceOptions(
                instanceID: instanceID, paths: directories.paths, name: name,
                configuration: configuration,
                outputBuffering: OutputBuffering(rawValue: outputBuffering) ?? .block,
                bufferLimit: bufferLimit, readyFD: readyFD, idleTimeout: idleTimeout)
            options.jobLimit = jobLimit
            RunspaceHost.run(options)
        }
    }
}
