import TetherIO
import ArgumentParser
import TetherClient
import TetherProtocol

extension HostKeyChecking: ExpressibleByArgument {}
extension TransportPreference: ExpressibleByArgument {}
extension OutputBuffering: ExpressibleByArgument {}

/// The ssh overrides every connecting verb takes (they win over the ssh config), spelled
/// as ssh spells them. Given at `new`/`connect`, they are remembered with the session.
struct ConnectionArguments: ParsableArguments {
    @Option(name: .customShort("F"), help: ArgumentHelp(
        "Use this ssh config file instead of ~/.ssh/config (default: $TETHER_SSH_CONFIG).", valueName: "FILE"))
    var configFile: String?

    @Option(name: [.customShort("p"), .long], help: ArgumentHelp("SSH port of every computer named.", valueName: "PORT"))
    var port: Int?

    @Option(name: [.customShort("l"), .customLong("user")], help: ArgumentHelp("Log in as this user.", valueName: "USER"))
    var user: String?

    @Option(name: .customShort("o"), help: ArgumentHelp(
        "An ssh option, as in ssh -o (repeatable; the first value of a keyword wins), e.g. -o Port=2222 -o 'Ciphers aes256-ctr'.",
        valueName: "KEY=VALUE"))
    var sshOptions: [String] = []

    @Option(name: [.customShort("J"), .customLong("jump")], help: ArgumentHelp(
        "Jump hosts, as in ssh -J (comma-separated [user@]host[:port]).", valueName: "HOSTS"))
    var jumpHosts: String?

    @Option(name: [.customShort("i"), .customLong("identity")], help: ArgumentHelp(
        "Private key file to try first (repeatable).", valueName: "FILE"))
    var identity: [String] = []

    @Option(help: ArgumentHelp("SSH subsystem to start on the host (default: tether).", valueName: "NAME"))
    var subsystem: String?

    @Option(name: .customLong("connect-timeout"), help: ArgumentHelp(
        "Seconds to wait for the connection (TCP connect; the handshake gets 10 s more).", valueName: "SEC"))
    var connectTimeout: Double?

    @Option(name: .customLong("strict-host-key-checking"), help: ArgumentHelp(
        "yes, accept-new or no: how to treat unknown host keys (changed keys are always refused unless no).",
        valueName: "POLICY"))
    var strictHostKeyChecking: HostKeyChecking?

    @Option(help: ArgumentHelp(
        "auto, libssh2 or openssh: which SSH implementation connects (default: $TETHER_TRANSPORT, else auto — libssh2, or OpenSSH's ssh where the config needs it).",
        valueName: "KIND"))
    var transport: TransportPreference?

    @Flag(name: .customShort("G"), help: "Print the configuration each computer this command would reach resolves to (ssh -G's output, then the transport tether would use and why) and exit without connecting.")
    var printConfiguration = false

    @Flag(name: .customShort("v"), help: "Print how each destination was resolved, which transport connects and why, and what the keeper did (repeat for more).")
    var verbose: Int

    func validate() throws {
        for option in sshOptions where !option.contains("=") && !option.contains(" ") {
            throw ValidationError("-o '\(option)' is not KEY=VALUE (e.g. -o Port=2222)")
        }
        if let port, !(1...65535).contains(port) {
            throw ValidationError("--port must be between 1 and 65535, not \(port)")
        }
        if let connectTimeout, !(connectTimeout > 0) {
            throw ValidationError("--connect-timeout must be a positive number of seconds")
        }
    }

    var options: ConnectionOptions {
        var options = ConnectionOptions(configFile: configFile, port: port, user: user, identityFiles: identity,
                                        subsystem: subsystem, connectTimeout: connectTimeout,
                                        strictHostKeyChecking: strictHostKeyChecking)
        options.sshOptions = sshOptions
        options.jumpHosts = jumpHosts
        options.transport = transport
        options.verbosity = verbose
        return options
    }
}

/// Splits `a,b c` style host lists (repeatable option values, commas inside each).
func splitList(_ values: [String]) -> [String] {
    var seen = Set<String>()
    var result: [String] = []
    for value in values {
        for part in value.split(separator: ",") {
            let item = part.trimmingWhitespace()
            if !item.isEmpty && seen.insert(item).inserted { result.append(item) }
        }
    }
    return result
}
