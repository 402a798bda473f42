import ArgumentParser
import TetherClient

/// `tether keeper`: the client keeper process (hidden). The CLI starts it on demand as
/// `tether keeper --socket PATH --ready-fd N`; people use `--status` and `--stop`.
struct KeeperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keeper",
        abstract: "The keeper process that holds warm SSH connections for tether commands.",
        discussion: prose("""
        tether commands hand their connections to a keeper process (one per
        TETHER_HOME, started on first use) that keeps one SSH connection per host open,
        so the next command skips the SSH handshake and login. A connection nobody uses
        closes after TETHER_KEEPER_PERSIST seconds (default 600), and the keeper exits
        once it has none. TETHER_KEEPER=0 makes tether connect directly.

        Examples:
          tether keeper --status
          tether keeper --stop
        """),
        shouldDisplay: false)

    @Flag(help: "Print the running keeper's links as JSON (exit 1 if none runs).")
    var status = false

    @Flag(help: "Close the keeper's connections and make it exit.")
    var stop = false

    @Option(help: ArgumentHelp("Run a keeper listening here (what tether itself does).", valueName: "PATH"))
    var socket: String?

    @Option(name: .customLong("ready-fd"), help: ArgumentHelp("Report readiness on this descriptor.", valueName: "N"))
    var readyFD: Int32?

    func validate() throws {
        let modes = [status, stop, socket != nil].filter { $0 }.count
        if modes != 1 {
            throw ValidationError("give exactly one of --status, --stop or --socket PATH")
        }
        if readyFD != nil && socket == nil {
            throw ValidationError("--ready-fd goes with --socket")
        }
        if let readyFD, readyFD < 3 {
            throw ValidationError("--ready-fd must be 3 or more, not \(readyFD)")
        }
    }

    func run() throws {
        if let socket {
            throw ExitCode(Keeper.run(socketPath: socket, readyFD: readyFD))
        }
        let home = ClientHome.default
        let executable = KeeperUse.currentExecutablePath
        if status {
            guard let text = try KeeperControl.status(home: home, executable: executable) else {
                Terminal.shared.err("tether: no keeper is running for TETHER_HOME \(home.directory)\n")
                throw ExitCode(1)
            }
            Terminal.shared.out(text + "\n")
        } else if stop {
            if try !KeeperControl.stop(home: home, executable: executable) {
                Terminal.shared.err("tether: no keeper is running for TETHER_HOME \(home.directory)\n")
                throw ExitCode(1)
            }
        }
    }
}
