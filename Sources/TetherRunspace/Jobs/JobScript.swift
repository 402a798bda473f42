/// The bash text that makes a job's copy of the session's shell. Pure text, no I/O.
///
/// The session's bash, idle, sources a driver file (in place of a command's) that runs
///
///     ( set -m; unset -f exec; exec >job-N.out 2>job-N.err </dev/null 3>&-
///       { read -r _ <job-N.gate; set --; source job-N.sh ARGS…; } &
///       echo $! >job-N.pid )
///
/// - The subshell `( … )` is a fork of the session's shell: the job sees exactly its
///   variables, functions, aliases, options, cwd and exports at that moment, and nothing
///   it changes comes back.
/// - `set -m` (job control, in the subshell only) puts the job `{ … } &` in a process
///   group of its own — what `jobStop` signals — and keeps SIGINT from being ignored as it
///   is for asynchronous commands without job control. The session's own `&`, `jobs` and
///   `wait` never see it: it belongs to the subshell, which exits at once.
/// - The subshell exits right after the fork, so the job is orphaned to the runspace (a
///   child subreaper), which reaps it and gets its real exit status — a signal included.
/// - stdout and stderr are two FIFOs whose read ends the runspace opened first, so the
///   subshell's open(2) doesn't wait, and the job's output reaches its own journal, not
///   the session's pipes. The subshell opens them itself before forking: once bash's
///   status line for this driver file arrives, the job holds the write ends, and the end of
///   file on them means every writer is gone. stdin is /dev/null; fd 3 (the status pipe)
///   is closed.
/// - The job first waits on a gate (a FIFO the runspace writes a line to once the status
///   line arrived): until the subshell has exited, a job that ended at once would be
///   reaped by the subshell, and its status lost to us.
/// - The pid goes to a file read when the status line arrives (bash has written it then).
enum JobScript {
    static func scriptName(_ id: UInt64) -> String { "job-\(id).sh" }
    static func stdoutName(_ id: UInt64) -> String { "job-\(id).out" }
    static func stderrName(_ id: UInt64) -> String { "job-\(id).err" }
    static func pidName(_ id: UInt64) -> String { "job-\(id).pid" }
    static func gateName(_ id: UInt64) -> String { "job-\(id).gate" }

    static func forkDriver(jobID id: UInt64, arguments: [String]) -> String {
        let directory = "\"$" + DriverLine.workDirectoryVariable + "\"/"
        func file(_ name: String) -> String { directory + DriverLine.quote(name) }
        // Plain `exec`: `builtin exec` would undo its redirections when it returns. A
        // function named exec is unset first (in the subshell only), so it can't stand in.
        var text = #"( \builtin set -m; \builtin unset -f exec; exec >"# + file(stdoutName(id)) + " 2>" + file(stderrName(id))
        text += " </dev/null 3>&-; { " + #"\builtin read -r _ <"# + file(gateName(id)) + "; "
        if arguments.isEmpty { text += #"\builtin set --; "# }
        text += #"\builtin source "# + file(scriptName(id))
        for argument in arguments { text += " " + DriverLine.quote(argument) }
        text += #"; } & \builtin echo $! >"# + file(pidName(id)) + " )\n"
        return text
    }
}
