import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherClient
import TetherProtocol

/// What `import` and `export` share: the session, which of its commands, the local names.
struct ImportArguments: ParsableArguments {
    @OptionGroup(title: "Session selection") var selector: SelectorArguments

    @Option(help: ArgumentHelp(
        "Import the session's functions, aliases and programs whose names match PATTERN (* ? [...] wildcards); repeatable and comma-separated, like PowerShell's -CommandName a,b.",
        valueName: "PATTERN"))
    var command: [String] = []

    @Option(help: ArgumentHelp("Put this in front of every local name (--prefix r_: the session's ls becomes r_ls).", valueName: "PREFIX"))
    var prefix: String = ""

    @Flag(name: .customLong("allow-clobber"), help: "Replace local functions, aliases, builtins and programs of the same name (default: keep them and skip the import of that name, saying so).")
    var allowClobber = false

    var patterns: [String] { splitList(command) }

    /// What `import` and `export --output` need (`export --restore-session` needs none
    /// of it, so it is not `validate()`).
    func validateForListing() throws {
        if patterns.isEmpty {
            throw ValidationError("name the commands to import with --command PATTERN (e.g. --command 'deploy*,ll'; --command '*' for all)")
        }
        if !prefix.isEmpty && !ImplicitRemoting.isPortableName(prefix) {
            throw ValidationError("--prefix '\(prefix)': use letters, digits and _ . : + @ - (not a leading -) so the names stay bash function names")
        }
        if !selector.hasSessionFilter {
            throw ValidationError("select the session with --name, --id or --instance-id (optionally with --computer HOST)")
        }
    }

    /// Finds the session, lists its matching commands and returns what to print. Names
    /// that can't be local functions, patterns that matched nothing and a failed listing
    /// are reported to `context.failures`; the rest is still in the plan.
    func plan(context: CommandContext, restoresSession: Bool, verb: String) async throws -> ImplicitRemoting.Plan {
        let targets = try await context.resolve(selector)
        guard targets.count == 1, let target = targets.first else {
            if targets.isEmpty { throw ExitCode(context.failures.exitCode == 0 ? 1 : context.failures.exitCode) }
            throw TetherClientError(.usage, "\(verb) takes its commands from one session, but \(selector.describe) selects \(targets.count): "
                + targets.map { "\($0.name) on \($0.computerName)" }.joined(separator: ", ") + "; narrow it with --computer or --name")
        }
        if target.name.contains(",") {
            throw TetherClientError(.usage, "session \(target.name) has a comma in its name, which --name cannot select; create one with another name to \(verb) from")
        }
        let computer = target.computerName
        let host = try await context.pool.host(computer)
        guard let summary = try await host.sessions(filter: SessionFilter(instanceID: target.instanceID)).first else {
            throw TetherClientError(.remote(.notFound), host: computer, "session \(target.name) is no longer there")
        }
        let token = String(RemoteSession.newInvokeToken(), radix: 16)
        let session = host.session(instanceID: target.instanceID, name: target.name)
        let listed: (stdout: [UInt8], stderr: [UInt8], exitStatus: Int32)
        do {
            listed = try await StallNotice.around(host, instanceID: target.instanceID, name: target.name,
                                                  waitingFor: "to list its commands") {
                try await session.invoke(ImplicitRemoting.discoveryScript, arguments: [token] + patterns)
            }.collect()
        } catch let error as TetherClientError where error.remoteCode == .permissionDenied {
            throw TetherClientError(error.kind, host: computer,
                "\(verb) lists the session's commands with bash, which session \(target.name) (configuration \(summary.info.configuration)) does not run: \(error.message)")
        }
        let (commands, other) = ImplicitRemoting.parseDiscovery(listed.stdout, token: token)
        // What the session's background jobs printed meanwhile: the user's, not a name.
        if !other.isEmpty { Terminal.shared.err(String(decoding: other, as: UTF8.self)) }
        if !listed.stderr.isEmpty { Terminal.shared.err(String(decoding: listed.stderr, as: UTF8.self)) }
        if listed.exitStatus != 0 {
            throw TetherClientError(.usage, host: computer, "listing the commands of session \(target.name) failed (status \(listed.exitStatus))")
        }
        var importable: [ImplicitRemoting.RemoteCommand] = []
        for command in commands {
            if ImplicitRemoting.isPortableName(command.name) {
                importable.append(command)
            } else {
                Terminal.shared.err("tether: \(computer): \(command.kind.described) \(command.name) of session \(target.name) is not imported: its name can't be a bash function name (letters, digits, _ . : + @ -)\n")
            }
        }
        for pattern in patterns where !commands.contains(where: { wildcardMatch(pattern, $0.name) }) {
            context.failures.report(TetherClientError(.usage, host: computer,
                "no function, alias or program of session \(target.name) matches --command \(pattern) (builtins and keywords are not imported: the local shell has its own)"))
        }
        let info = summary.info
        let reference = ImplicitRemoting.SessionReference(
            tether: Self.tetherExecutable, computerName: computer, name: target.name, instanceID: target.instanceID,
            connection: await context.pool.options(for: computer), configuration: info.configuration,
            idleTimeout: info.idleTimeout, outputBuffering: info.outputBuffering, bufferLimit: info.bufferLimit,
            jobLimit: info.jobLimit)
        return ImplicitRemoting.Plan(session: reference, commands: importable, prefix: prefix, allowClobber: allowClobber,
                                     restoresSession: restoresSession,
                                     madeBy: "tether \(verb), \(SessionTable.formatTime(Date().timeIntervalSince1970))")
    }

    /// How the generated code runs tether: this executable by its absolute path when it
    /// was started by a path, else by name through PATH.
    static var tetherExecutable: String {
        let invoked = CommandLine.arguments.first ?? "tether"
        guard invoked.contains("/") else { return invoked.isEmpty ? "tether" : invoked }
        if invoked.hasPrefix("/") { return invoked }
        let directory = FileManager.default.currentDirectoryPath
        return (directory == "/" ? "" : directory) + "/" + (invoked.hasPrefix("./") ? String(invoked.dropFirst(2)) : invoked)
    }
}
