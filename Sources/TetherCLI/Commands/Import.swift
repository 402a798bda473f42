import ArgumentParser
import Glibc
import TetherClient

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print bash that makes a session's commands local functions (eval it).",
        discussion: prose("""
        Implicit remoting, as PowerShell's Import-PSSession: lists the functions, aliases
        and programs on PATH of ONE session whose names match the --command patterns, and
        prints bash code that defines a local function for each. Evaluate it in your shell
        (eval "$(tether import …)"); calling a function then runs the command of the same
        name in the session, in its shell (its variables, directory and functions), with
        the arguments exactly as given (spaces, quotes, globs, newlines, empty strings,
        leading dashes), stdin forwarded when it is not a terminal (a terminal is not: the
        command gets end of file rather than hang), stdout and stderr as written and the
        command's exit status — each call is one `tether invoke` (255 when the host can't
        be reached; Ctrl-C interrupts the remote command). Builtins and keywords are the
        local shell's own and are not imported; the session's aliases and functions are
        imported under the name the session resolves.

        A name that already exists where the code is evaluated — a function, an alias, a
        builtin, a program on PATH, a keyword — is kept, and that import is skipped with a
        note on stderr; --allow-clobber replaces it (never a keyword). The check happens
        when the code is evaluated, in that shell; importing the same session again
        replaces its own functions silently. --prefix puts a prefix in front of every
        local name. A function reads its stdin like ssh does: inside a `while read` loop,
        give it </dev/null.

        To keep the functions for later shells, see tether export: its file also
        re-creates or reconnects the session when needed.

        Examples:
          eval "$(tether import --name deploy --command 'app*,ll')"
          app-status --verbose               # runs app-status in the session deploy
          eval "$(tether import --id 2 --command 'df,tar' --prefix w_)"
          w_df -h /srv
          tar c ./site | w_tar x -C /srv/www
          eval "$(tether import --id 3 --command ls --allow-clobber)"  # its ls
          tether Import-PSSession -Session deploy -CommandName 'app*' -Prefix r_
        """))

    @OptionGroup var arguments: ImportArguments

    @OptionGroup(title: "Connection") var connection: ConnectionArguments

    func validate() throws {
        try arguments.validateForListing()
    }

    func run() async throws {
        try await reportingErrors {
            if connection.printConfiguration {
                return try ResolvedConfigurations.print(try ResolvedConfigurations.computers(for: arguments.selector),
                                                        connection: connection)
            }
            let context = try CommandContext(connection: connection)
            let plan = try await arguments.plan(context: context, restoresSession: false, verb: "import")
            await context.pool.closeAll()
            Terminal.shared.out(ImplicitRemoting.code(plan))
            if isatty(1) == 1 {
                // Printed, not run: the functions exist only once a shell evaluates this.
                Terminal.shared.err("tether: this is bash to evaluate: eval \"$(tether import …)\" defines the functions\n")
            }
            try context.failures.exitIfFailed()
        }
    }
}
