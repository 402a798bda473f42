/// The bash text the runspace has bash run. Pure text, no I/O.
///
/// Each command is a script file `source`d by the one persistent shell, so its variables,
/// functions, aliases, cwd and exports outlive it. Bash's stdin is a pipe, which bash reads
/// one byte per read(2), so the line it carries per command is short and the same every
/// time; what varies goes in files:
///
/// - A plain command (no arguments, no terminal, stdin /dev/null — what the library sends
///   unless asked for stdin) is one line, `\builtin eval "$__tether_run"` (`plainCommand`,
///   28 bytes): that readonly variable, defined at startup, holds the *driver* for the
///   case (`driverFile`'s text, then `\__tether_end`). `eval` runs it at the top level as
///   the line itself would (a function would make the script's `declare`s local), and bash
///   opens no driver file — 57 reads of one byte and an open, fstat, read and close fewer
///   than a driver file, and the runspace writes one file per command instead of two.
/// - Any other command gets a *driver file* (`driverFile`, rewritten beside the script)
///   and the line `\builtin source "$__tether_w"/'run.sh';\__tether_end` (`command`).
///
/// `__tether_end` reports the status (the one `exit` recorded, else `$?`). The driver,
/// around the script:
///
/// - The INT trap is re-installed before every command (`\__tether_begin`). Bash 5 loses
///   its trap handler when a trap's `return` unwinds out of waiting for a foreground
///   child (the next SIGINT is then ignored); installing the trap again puts the handler
///   back. It also undoes a command's own `trap … INT`.
/// - SIGINT unwinds the whole command, not just the innermost function: the INT trap
///   returns 130 and marks the command interrupted, and the ERR trap (inherited by
///   functions through `set -E`) keeps returning from each caller — the script, then a
///   driver file — until the line's `source` or `eval` is back at the top level. Callers
///   that test the status (`if f`, `f || …`) see 130 and carry on, as they asked to.
///   Without a trap, non-interactive bash would exit on SIGINT.
/// - Bash writes `s` on the status pipe just before sourcing the script, after opening the
///   command's stdin: the runspace holds an interrupt back until then (earlier, bash could
///   still be reading the line, where the trap can't return and the mark would be reset),
///   and may close a FIFO's writing end from then on. A SIGINT between `s` and the
///   script's first command only sets the mark (in a driver file it also returns from
///   it); `scriptPrefix`, on the script's first line, returns on it.
/// - `set --` when there are no arguments, so the command doesn't see the previous `"$@"`.
/// - fd 3 (the status pipe) is closed for the command itself (`3>&-` on `source`; bash
///   keeps its own copy above fd 10, close-on-exec), so background jobs don't hold it and
///   a command can use fd 3 freely; the status `echo` after it writes to the real one.
/// - Everything is `\builtin` (or a `readonly -f` function called as `\name`, or a
///   readonly variable) so a command's aliases, functions or assignments can't hijack
///   the driver.
enum DriverLine {
    /// Put in front of every script, on its first line (so line numbers in bash's messages
    /// stay the user's): an interrupt that arrived before the script began ends it at once.
    static let scriptPrefix = #"[[ -z ${__tether_interrupted-} ]] || \builtin return 130; "#

    private static let scriptPrefixBytes = Array(scriptPrefix.utf8)

    /// The status-pipe line bash writes when the command is about to start.
    static let startedMarker = "s"

    /// The prelude every command runs (`\__tether_begin`: traps, marks, per-command
    /// options) and the functions that keep bash alive (`ShellPrelude`), all `readonly -f`
    /// where a command must not redefine them and called as `\name` (no alias can stand in).
    static let beginFunction = "__tether_begin"
    /// The session's work directory (holding the script files and stdin FIFOs), a readonly
    /// variable so each command line names its files briefly.
    static let workDirectoryVariable = "__tether_w"
    /// The readonly variable holding the plain command's driver (`plainCommand`).
    static let plainDriverVariable = "__tether_run"
    /// The script file's name in the work directory (the driver names it).
    static let scriptName = "command.sh"

    /// What bash runs once at start: alias expansion on (non-interactive bash has it off),
    /// the work directory and the paths of the runspace's ends of bash's stdin and status
    /// pipe (`/proc/PID/fd/N`, so the EXIT trap can tell its own pipes are back in place),
    /// the prelude, the plain command's driver (`plainDriverVariable`), the configuration's
    /// startup script (sourced once, reading /dev/null, without the status pipe), then a
    /// status line so the runspace knows bash is up.
    ///
    /// With `streams` (the FIFO's path and the directory of the `tether-*` commands): the
    /// stream functions (`StreamFunctions`), `TETHER_STREAMS` exported and the commands'
    /// directory last in `PATH`, before the startup script (which may use them).
    static func startup(workDirectory: String, driverInput: String, statusOutput: String,
                        startupScript: String? = nil, streams: (fifo: String, commands: String)? = nil) -> String {
        var line = #"\builtin shopt -s expand_aliases; "#
        line += #"\builtin readonly "# + workDirectoryVariable + "=" + quote(workDirectory)
        line += " __tether_in=" + quote(driverInput) + " __tether_st=" + quote(statusOutput) + "\n"
        line += ShellPrelude.definitions + "\n"
        line += #"\builtin readonly "# + plainDriverVariable + "=" + quote(plainDriver) + "\n"
        if let streams {
            line += StreamFunctions.definitions + "\n"
            line += #"\builtin export "# + StreamFunctions.variable + "=" + quote(streams.fifo)
            if !streams.commands.isEmpty { line += " PATH=\"${PATH:+$PATH:}\"" + quote(streams.commands) }
            line += "\n"
        }
        if let startupScript { line += #"\builtin source "# + quote(startupScript) + " </dev/null 3>&-\n" }
        line += #"\builtin printf '%d\n' $? >&3"# + "\n"
        return line
    }

    /// The script file's contents for `script`.
    static func scriptFile(_ script: String) -> String {
        String(decoding: scriptFileBytes(script), as: UTF8.self)
    }

    /// `scriptFile(script)` as the bytes written to the file, built at once (no joined
    /// string first: the runspace makes one per command).
    static func scriptFileBytes(_ script: String) -> [UInt8] {
        var bytes: [UInt8] = []
        // (+ 1: room for the final newline `WorkDirectory` adds if the script lacks one.)
        bytes.reserveCapacity(scriptPrefixBytes.count + script.utf8.count + 1)
        bytes += scriptPrefixBytes
        bytes += script.utf8
        return bytes
    }

    /// The driver file for one command (written next to its script): the script
    /// `scriptName` (in the work directory) with `arguments` as `"$@"`, reading the FIFO
    /// `stdinName` (in the work directory) or /dev/null. `set --` only without arguments:
    /// `source` with arguments sets `"$@"` itself (and puts the old ones back after);
    /// sourced without arguments, the driver file shares the shell's `"$@"`, so `set --`
    /// in it clears them. On an interrupt the ERR trap returns from the driver file too.
    ///
    /// With a terminal (`slave`, the pty's path, and the client's TERM): stdin, stdout and
    /// stderr are the slave, opened by bash itself so that it becomes bash's controlling
    /// terminal; TERM is exported (it stays the session's); SIGHUP (the terminal hanging up
    /// after the command) and SIGQUIT (Ctrl-\ kills the program, as in a shell) get a
    /// harmless trap in bash — a trap, not an ignore, so programs keep the default.
    static func driverFile(scriptName: String, arguments: [String], stdinName: String?,
                           terminal: (slave: String, term: String)? = nil) -> String {
        let directory = "\"$" + workDirectoryVariable + "\"/"
        var text = "\\" + beginFunction + "\n"
        if arguments.isEmpty { text += #"\builtin set --"# + "\n" }
        if let terminal {
            text += #"\builtin trap -- : HUP QUIT; \builtin export TERM="# + quote(terminal.term) + "\n"
        }
        text += #"{ \builtin echo s >&3; \builtin source "# + directory + quote(scriptName)
        for argument in arguments { text += " " + quote(argument) }
        if let terminal {
            text += " 3>&-; } <>" + quote(terminal.slave) + " >&0 2>&0\n"
        } else {
            text += " 3>&-; } <" + (stdinName.map { directory + quote($0) } ?? "/dev/null") + "\n"
        }
        return text
    }

    /// The driver of a command without arguments, terminal or stdin, followed by its
    /// status report: the value of `plainDriverVariable`, run by `plainCommand`.
    static let plainDriver = driverFile(scriptName: scriptName, arguments: [], stdinName: nil) + #"\__tether_end"#

    /// True when `plainCommand` runs such a command (no driver file needed).
    static func isPlain(arguments: [String], stdinName: String?, terminal: (slave: String, term: String)?) -> Bool {
        arguments.isEmpty && stdinName == nil && terminal == nil
    }

    /// The line for a plain command: bash evaluates the driver it was given at startup,
    /// at the top level, reading no file but the script.
    static let plainCommand = #"\builtin eval "$"# + plainDriverVariable + "\"\n"
    /// `plainCommand` as the bytes written to bash's stdin (made once, not per command).
    static let plainCommandBytes = Array(plainCommand.utf8)

    /// The line for a command with a driver file: source it, report its status. The same
    /// few bytes each time — bash reads a pipe one byte per read(2), so everything that
    /// varies goes in the files.
    static func command(driverName: String) -> String {
        #"\builtin source "$"# + workDirectoryVariable + #""/"# + quote(driverName) + #";\__tether_end"# + "\n"
    }

    /// Single-quotes `text` for bash: exactly these bytes, no expansion. A `'` becomes
    /// `'\''` (close, escaped quote, reopen). Newlines are fine inside single quotes.
    static func quote(_ text: String) -> String {
        var bytes: [UInt8] = [0x27]
        for byte in text.utf8 {
            if byte == 0x27 {
                bytes.append(contentsOf: [0x27, 0x5c, 0x27, 0x27])  // '\''
            } else {
                bytes.append(byte)
            }
        }
        bytes.append(0x27)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Why `text` can't be passed to bash, if it can't: bash strings end at a NUL byte.
    static func unusableReason(_ text: String) -> String? {
        text.utf8.contains(0) ? "contains a NUL byte, which bash cannot pass" : nil
    }
}
