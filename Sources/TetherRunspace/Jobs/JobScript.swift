/// The bash text that makes a job's copy of the session's shell. Pure text, no I/O.
///
/// The session's bash, idle, sources a driver file (in place of a command's) that runs
///
///     ( set -m; unset -f exec exit; exec >job-N.out 2>job-N.err </dev/null 3>&-
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
    static func streamsName(_ id: UInt64) -> String { "job-\(id).streams" }

    static func forkDriver(jobID id: UInt64, arguments: [String]) -> String {
        let directory = "\"$" + DriverLine.workDirectoryVariable + "\"/"
        func file(_ name: String) -> String { directory + DriverLine.quote(name) }
        // `__tether_s=`: the status the driver line reports is this line's, not one an
        // earlier command's `exit` recorded (ShellPrelude). Plain `exec`: `builtin exec`
        // would undo its redirections when it returns; the session's `exec` and `exit`
        // functions (which keep the session's shell alive) are unset in the subshell, so
        // in a job they are bash's own.
        var text = #"__tether_s=; ( \builtin set -m; \builtin unset -f exec exit; exec >"# + file(stdoutName(id)) + " 2>" + file(stderrName(id))
        text += " </dev/null 3>&-; " + #"\builtin export "# + StreamFunctions.variable + "=" + file(streamsName(id))
        text += "; { " + #"\builtin read -r _ <"# + file(gateName(id)) + "; "
        if arguments.isEmpty { text += #"\builtin set --; "# }
        text += #"\builtin source "# + file(scriptName(id))
        for argument in arguments { text += " " + DriverLine.quote(argument) }
        text += #"; } & \builtin echo $! >"# + file(pidName(id)) + " )\n"
        return text
    }
}

/// The snapshot a job started while the session's bash runs a command loads instead of
/// forking it (docs/architecture.md, "Jobs"): written by the idle session's bash, loaded
/// by a new `bash --noprofile --norc`.
extension JobScript {
    static let snapshotName = "snapshot.sh"
    static func snapshotCopyName(_ id: UInt64) -> String { "job-\(id).snap" }

    /// The driver file that makes the idle session's bash write its state: variables (with
    /// their attributes, exports included), functions, aliases, shell options, umask, and
    /// the working directory last. Errors (read-only variables) are not the point.
    static func snapshotDriver() -> String {
        let file = "\"$" + DriverLine.workDirectoryVariable + "\"/" + DriverLine.quote(snapshotName)
        return #"__tether_s=; { \builtin declare -p; \builtin declare -f; \builtin alias -p; \builtin shopt -p; \builtin set +o; "#
            + #"\builtin umask -p; \builtin printf '\\builtin cd -- %q\n' "$PWD"; } >"# + file + " 2>/dev/null\n"
    }

    /// `bash -c` text for a job run from a snapshot copy: load it quietly (bash's own
    /// read-only variables refuse to be set), drop the session's `exec` and `exit`
    /// functions (a job's are bash's own), then source the job's script with "$@".
    /// `streamsPath`: the job's own stream FIFO (the snapshot names the session's).
    static func snapshotCommand(snapshotPath: String, scriptPath: String, streamsPath: String) -> String {
        #"\builtin source "# + DriverLine.quote(snapshotPath) + #" >/dev/null 2>&1; \builtin unset -f exec exit; "#
            + #"\builtin export "# + StreamFunctions.variable + "=" + DriverLine.quote(streamsPath) + #"; \builtin source "#
            + DriverLine.quote(scriptPath) + #" "$@""#
    }
}
