import TetherIO

/// Whether a `TetherClient`'s connections go through the client keeper — one process per
/// TETHER_HOME holding warm SSH connections that many processes share (OpenSSH's
/// ControlMaster + ControlPersist, started on demand). Worth it for short-lived processes
/// (the CLI); a long-lived program keeps its own connections open anyway.
public enum KeeperUse: Sendable, Equatable {
    /// Every `connect` opens its own SSH connection. The library's default.
    case never
    /// Through the keeper that `executable keeper …` runs (the `tether` binary), started
    /// when none answers. If it can't be started or reached, or it can't serve a
    /// destination (a key whose passphrase must be typed), `connect` opens a direct
    /// connection instead; a real connection failure is reported as it would be directly.
    /// `TETHER_KEEPER=0` (or `off`) turns it off; only the libssh2 transport uses it.
    case automatic(executable: String)

    /// The keeper run by the executable of this process: only right for the `tether` CLI
    /// itself (another program names the `tether` binary with `.automatic`).
    public static var thisExecutable: KeeperUse { .automatic(executable: currentExecutablePath) }

    /// The absolute path of this process's executable.
    public static var currentExecutablePath: String { Spawn.currentExecutable() }

    /// The keeper executable to use now, after `TETHER_KEEPER` (`ConnectionPlan` has
    /// already chosen libssh2: the keeper holds libssh2 links only).
    var effectiveExecutable: String? {
        guard case .automatic(let executable) = self else { return nil }
        switch Environment.get("TETHER_KEEPER")?.lowercased() {
        case "0", "off", "no", "false": return nil
        default: break
        }
        return executable
    }
}
