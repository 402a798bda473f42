import ArgumentParser
import Glibc
import TetherConfiguration

extension HostCommand {
    /// `sshd -t` for session configurations: reads every file as the host would, prints
    /// each problem as FILE:LINE: message, and fails if there is any.
    struct CheckConfigurations: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-configurations",
            abstract: "Validate the session configuration files, as sshd -t does sshd_config.",
            discussion: """
            Reads every NAME.conf in the configuration directory with the host's own rules:
            ownership and modes (root's, not writable by group or others), unknown
            keywords, bad values, Command programs that don't exist or aren't executable,
            argument patterns that can't match. Prints each problem as FILE:LINE: MESSAGE
            and exits 1 if there is any; otherwise lists the configurations and exits 0.
            A configuration with an error is never used by the host.

            Examples:
              sudo tether-subsystem check-configurations
              tether-subsystem check-configurations --configuration-dir ./conf.d
            """)

        @Option(name: .customLong("configuration-dir"), help: ArgumentHelp(
            "The directory to check.", discussion: "Default: \(ConfigurationDirectory.defaultPath).", valueName: "DIR"))
        var configurationDirectory: String?

        @Flag(name: .shortAndLong, help: "Say nothing when everything is fine.")
        var quiet = false

        func run() throws {
            let directory = ConfigurationDirectory(path: configurationDirectory.map(Self.absolute))
            let contents = directory.loadAll()
            for diagnostic in contents.diagnostics {
                FileHandleOutput.standardError("\(diagnostic)\n")
            }
            if !contents.diagnostics.isEmpty {
                FileHandleOutput.standardError("tether-subsystem: \(contents.diagnostics.count) problem\(contents.diagnostics.count == 1 ? "" : "s") in \(directory.path); a configuration with errors is not offered\n")
                throw ExitCode(1)
            }
            guard !quiet else { return }
            if contents.missing {
                print("\(directory.path) does not exist: only the built-in bash configuration")
            }
            for configuration in contents.configurations {
                let state = configuration.enabled ? "" : " (disabled)"
                let source = configuration.file ?? "built in"
                print("\(configuration.name)\t\(configuration.kind.rawValue)\(state)\t\(source)")
            }
        }

        static func absolute(_ path: String) -> String {
            guard !path.hasPrefix("/") else { return path }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else { return path }
            return String(cString: buffer) + "/" + path
        }
    }
}

enum FileHandleOutput {
    static func standardError(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}
