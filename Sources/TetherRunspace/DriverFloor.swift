/// The runspace's per-command bash text, for the bench's *driver floor* (`tether-bench`,
/// `ChannelProbe`): a bash behind one copying relay that runs each command as a session's
/// bash does — the same prelude, the same plain-command driver, the same script file —
/// with no runspace, journal or Tether process around it. Its round trip, next to the
/// relay floor's `true; echo $?`, is what the driver's guarantees (stdin kept from the
/// command, fd 3 closed for it, the INT and ERR traps, the `s` marker, the status) cost in
/// bash by themselves. Pure text, no I/O.
///
/// The driver's two status-pipe writes (`s`, then the status) go to /dev/null here, and
/// one `0` line on stdout answers each command, as `echo $?` does in the relay floor: a
/// relay that only copies would otherwise forward `s` on its own, a second trip across
/// sshd and the client that a runspace (which holds `started` back for a short command)
/// doesn't make. So this floor is, if anything, below what the driver costs in a session.
public enum DriverFloor {
    /// The variable holding what each command evaluates: the session's plain-command
    /// driver (`DriverLine.plainDriver`), then the answer.
    static let runVariable = "__tether_fr"

    /// What bash reads first: a private work directory holding `script` as the command
    /// file, the runspace's own startup text with the status pipe (fd 3) on /dev/null,
    /// then `0\n` on stdout once bash is ready.
    public static func startup(script: String) -> String {
        let directoryVariable = "__tether_floor_w"
        let placeholder = "/__tether_floor_directory__"
        var text = "exec 3>/dev/null; " + directoryVariable
        text += "=$(mktemp -d -t tether-driver-floor.XXXXXX) || exit 1; "
        text += #"\builtin printf '%s' "# + DriverLine.quote(DriverLine.scriptFile(script))
        text += " > \"$" + directoryVariable + "\"/" + DriverLine.scriptName + "\n"
        // The session's bash gets the work directory as a literal; here it is mktemp's.
        text += DriverLine.startup(workDirectory: placeholder, driverInput: "/dev/null", statusOutput: "/dev/null")
            .replacing(DriverLine.quote(placeholder), with: "\"$" + directoryVariable + "\"")
        text += #"\builtin readonly "# + runVariable + #"="$"# + DriverLine.plainDriverVariable + #""$'\n'"#
        text += DriverLine.quote(#"\builtin echo 0"#) + "\n"
        text += #"\builtin echo 0"# + "\n"
        return text
    }

    /// The line bash reads for each command: as long as the session's
    /// (`DriverLine.plainCommand`, one byte more); bash answers `0\n` when it ends.
    public static var commandLine: String { #"\builtin eval "$"# + runVariable + "\"\n" }

    /// The last line: removes the work directory; end of input then ends bash.
    public static let cleanup = #"\command rm -rf -- "$__tether_floor_w""# + "\n"
}
