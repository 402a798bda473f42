import ArgumentParser
import Glibc
import TetherClient
import TetherProtocol

/// `tether`: PowerShell-style persistent remote sessions over SSH.
public struct TetherCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tether",
        abstract: "Persistent remote shell sessions over SSH (PowerShell PSSessions for Linux).",
        discussion: prose("""
        A session is a persistent bash on a host: variables, functions, the working
        directory and background jobs survive between commands, between tether processes,
        and across disconnects. Output is numbered on the host, so nothing is lost when a
        connection drops: `tether receive` collects what you missed.

        State lives in $TETHER_HOME (default ~/.local/state/tether). Hosts are resolved as ssh
        resolves them (ssh -G: ~/.ssh/config or $TETHER_SSH_CONFIG, /etc/ssh/ssh_config, Match,
        Include) and reached with libssh2, or with the ssh binary where the config needs what
        only ssh can do (certificates, FIDO keys…; said on stderr; --transport or
        TETHER_TRANSPORT force either). The connecting verbs take ssh's -p -l -i -F -o -J -v,
        and -G, which prints the configuration of each computer the command would reach
        (`tether new HOST -G`, `tether invoke --name deploy -G`) without connecting. A background keeper
        process holds each host's SSH connection open between commands (TETHER_KEEPER_PERSIST seconds, default 600; TETHER_KEEPER=0
        connects directly; `tether keeper --status` shows it).

        Examples:
          tether enter web1
          tether new web1 --name deploy
          tether enter --name deploy
          tether invoke --name deploy -- 'cd /srv/app && git pull'
          tether invoke --computer web1,web2 -- uptime
          tether disconnect --name deploy
          tether get --computer web1
          tether receive --computer web1 --name deploy
          tether remove --name deploy
          eval "$(tether import --name deploy --command 'app*')"   # the session's app* as local functions

        PowerShell's cmdlet names and parameters work too (tether Get-PSSession
        -ComputerName web1): tether help powershell lists them.
        """),
        version: tetherVersionLine("tether", detail: "libssh2 \(TetherClient.libssh2Version)"),
        subcommands: [Enter.self, New.self, Invoke.self, Get.self, Connect.self, Disconnect.self, Receive.self, Remove.self,
                      JobCommand.self, Import.self, Export.self, Configurations.self,
                      KeeperCommand.self]
    )

    public init() {}
}

extension TetherCommand {
    /// Parses the command line and runs the verb. (What `AsyncParsableCommand.main()`
    /// does; spelled out because top-level code in main.swift resolves `main()` to the
    /// synchronous overload.)
    public static func runMain() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if PowerShellHelp.isRequest(arguments) {
            print(PowerShellHelp.text, terminator: "")
            return
        }
        let native: [String]
        do {
            native = try CmdletTranslation.translate(arguments)
        } catch {
            // A usage error, exiting as swift-argument-parser's own do.
            Terminal.shared.err("tether: \(error)\n")
            Glibc.exit(64)
        }
        do {
            var command = try parseAsRoot(native)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            TetherClient.shutdownEventLoop()
        } catch {
            TetherClient.shutdownEventLoop()
            exit(withError: error)
        }
    }
}
