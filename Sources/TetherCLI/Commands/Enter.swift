import ArgumentParser
import Glibc
import TetherClient
import TetherProtocol

struct Enter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work in a session at a prompt (Enter-PSSession): an existing one, or a temporary one on a computer.",
        discussion: prose("""
        tether enter --name NAME (or --id, --instance-id; add --computer HOST to look on
        a host) enters an existing session: it is kept when you leave. tether enter HOST
        starts a temporary session there, removed when you leave.

        The prompt names the computer, the session and the session's working directory:
        [web1:deploy] /srv/app$. Each line runs as a command of the session, so cd,
        variables, functions and background jobs persist exactly as with invoke. Lines are
        edited with libedit (emacs keys, Up/Down for history). History belongs to the
        session and is kept on the host, so it follows the session to another machine.
        Tab completes commands, files, variables and functions from the session itself.
        Input bash finds unfinished (an open quote, if without fi, a trailing \\)
        continues on the next line after a "> " prompt.

        Each command runs on a terminal on the host (as invoke --tty): vim, top, less,
        python3 and password prompts work, TERM and the window size come from here, and
        this terminal is raw while the command runs, so every key is the program's.
        Ctrl-C interrupts the running command and returns to the prompt; at the prompt it
        drops the line. exit, logout or Ctrl-D at the prompt leave; the session stays
        (disconnect it with tether disconnect, end it with tether remove).

        Escapes, typed at the start of a line, as in ssh:
          ~.  detach: the command goes on, the session is released (as by
              tether disconnect); tether enter of it later, from any machine,
              shows what the command printed meanwhile and follows it live
          ~?  list the escapes
          ~~  type a ~

        If the connection is lost, enter reconnects and goes on where the output stopped,
        as invoke does (--reconnect-timeout).

        Without a terminal (tether enter --name s < script.sh) lines are read from stdin
        and run one by one, with no prompt; commands spanning several lines work as at
        the prompt. The exit status is the last command's (or N of exit N); 255 if the
        host could not be reached, 1 for other errors.

        Examples:
          tether enter web1
          tether enter --name deploy
          tether enter --computer web1 --name deploy --force
          tether enter --id 3 < ./maintenance.sh
          tether enter web1 --configuration ops      # a restricted endpoint: allowed commands only
        """))

    @Argument(help: ArgumentHelp(
        "A computer to start a temporary session on (removed when you leave); with --name/--id/--instance-id, where to look for that session.",
        valueName: "HOST"), completion: .custom(HostCompletion.complete))
    var host: String?

    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Flag(help: "Take the session over if another client holds it (that client is told).")
    var force = false

    @Option(help: ArgumentHelp(
        "Session configuration of the temporary session (see tether configurations; default bash). In a restricted one each line is one allowed command line.",
        valueName: "NAME"))
    var configuration: String?

    @OptionGroup(title: "Streams") var streams: StreamArguments

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    @OptionGroup(title: "Resuming after a lost connection") var reconnect: ReconnectArguments

    /// Whether the session runs a restricted configuration (asked of the host: the
    /// session's configuration name, then that configuration's kind).
    static func isRestricted(_ host: RemoteHost, instanceID: String) async -> Bool {
        guard let name = try? await host.sessions(filter: SessionFilter(instanceID: instanceID)).first?.info.configuration,
              name != "bash" else { return false }
        return (try? await host.configurations())?.first(where: { $0.name == name })?.kind == "restricted"
    }

    func validate() throws {
        if configuration != nil && selector.hasSessionFilter {
            throw ValidationError("--configuration chooses the configuration of the temporary session; an existing session keeps its own")
        }
        if host == nil && !selector.hasSessionFilter {
            throw ValidationError("name a computer (tether enter web1, a temporary session) or a session (--name, --id or --instance-id)")
        }
        if let host, !selector.computers.isEmpty {
            throw ValidationError("give the computer once: tether enter \(host) --name … or tether enter --computer \(host) --name …")
        }
        if host != nil && !selector.hasSessionFilter && force {
            throw ValidationError("--force takes over an existing session; a temporary session is new")
        }
    }

    /// The selector, with a HOST argument as its `--computer`.
    private var enterSelector: SelectorArguments {
        var lookup = selector
        if let computer = host { lookup.computer = [computer] }
        return lookup
    }

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(host.flatMap { selector.hasSessionFilter ? nil : [$0] } ?? (try ResolvedConfigurations.computers(for: enterSelector)), connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let interactive = isatty(0) != 0 && isatty(1) != 0
            var temporary = false
            let host: RemoteHost
            let session: RemoteSession
            if let computer = self.host, !selector.hasSessionFilter {
                host = try await context.pool.host(computer)
                session = try await host.createSession(configuration: configuration)
                temporary = true
            } else {
                let targets = try await context.resolve(enterSelector)
                try context.failures.exitIfFailed()
                guard targets.count == 1, let target = targets.first else {
                    let names = targets.map { "\($0.name) (Id \($0.local.id), \($0.computerName))" }
                    throw TetherClientError(.usage, "\(enterSelector.describe) matches \(targets.count) sessions: \(names.joined(separator: ", ")); enter one (e.g. --id N)")
                }
                host = try await context.pool.host(target.computerName)
                session = host.session(instanceID: target.instanceID, name: target.name)
                if force { _ = try await host.claim(instanceID: target.instanceID, force: true) }
            }
            if !interactive {
                let running = RunningSessions()
                running.add(session)
                InterruptHandler(onFirst: { running.interruptAll() }).install()
            }
            let loop = try EnterLoop(host: host, session: session, pool: context.pool,
                                     reconnectTimeout: reconnect.reconnectTimeout, interactive: interactive)
            loop.restricted = await Self.isRestricted(host, instanceID: session.instanceID)
            loop.display = StreamDisplay(showVerbose: streams.showVerbose, rawTerminal: interactive)
            let ending: EnterLoop.Ending
            do {
                ending = interactive ? try await loop.runInteractive() : try await loop.runScripted()
            } catch {
                if temporary { try? await loop.host.remove(instanceID: session.instanceID) }
                throw error
            }
            let code = try await leave(ending, loop: loop, temporary: temporary, context: context)
            await context.pool.closeAll()
            if code != 0 { throw ExitCode(code) }
        }
    }

    /// What leaving does to the session: `exit` keeps a named one (held by this client,
    /// as Exit-PSSession) and removes a temporary one; `~.` releases it, temporary or not
    /// (its command goes on; it joins the session list so it can be entered again).
    private func leave(_ ending: EnterLoop.Ending, loop: EnterLoop, temporary: Bool,
                       context: CommandContext) async throws -> Int32 {
        let computer = loop.computerName
        switch ending {
        case .left(let status):
            if temporary {
                try await loop.host.remove(instanceID: loop.session.instanceID)
            } else {
                try? await loop.session.detach()
            }
            return status
        case .detached:
            let summary = try await loop.host.release(instanceID: loop.session.instanceID)
            let local = try context.record([summary]).first
            let again = local.map { "tether enter --id \($0.id)" } ?? "tether enter --computer \(computer) --instance-id \(summary.instanceID)"
            Terminal.shared.err("\ntether: detached from \(computer):\(summary.name); the command goes on (\(again) continues it)\n")
            return 0
        case .sessionEnded(let reason):
            Terminal.shared.err("tether: \(computer): \(reason)\n")
            if temporary { try? await loop.host.remove(instanceID: loop.session.instanceID) }
            return 1
        }
    }
}
