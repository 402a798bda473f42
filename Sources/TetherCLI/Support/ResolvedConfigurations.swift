import ArgumentParser
import TetherClient

/// `-G` on every connecting verb: what each computer the command would reach resolves to
/// (ssh -G's output, then the transport tether would use), printed without connecting —
/// with the options its sessions remember (`new -p 2222 …`) under this command line's.
enum ResolvedConfigurations {
    /// Prints each computer's configuration (a `# computer NAME` line first when there are
    /// several); a computer whose config is bad is reported (exit 255) after the others.
    static func print(_ computers: [String], connection: ConnectionArguments) throws {
        let failures = Failures()
        let remembered = HostPool.remembered(in: ClientHome.default.sessions)
        for computer in computers {
            let options = remembered[computer]?.overridden(by: connection.options) ?? connection.options
            do {
                let text = try TetherClient.resolvedConfiguration(computer, options: options)
                Terminal.shared.out((computers.count > 1 ? "# computer \(computer)\n" : "") + text)
            } catch {
                failures.report(error, host: computer)
            }
        }
        try failures.exitIfFailed()
    }

    /// The computers a selector verb would reach, found without asking any host: the
    /// `--computer` values when the verb asks them (no `--id`), else the computers of the
    /// sessions in this client's list that the selector matches (every session's, for
    /// `allWhenUnselected` verbs — `get`, `job`). Nothing matching is the verb's own
    /// usage error.
    static func computers(for selector: SelectorArguments, allWhenUnselected: Bool = false) throws -> [String] {
        if !selector.computers.isEmpty && selector.id.isEmpty { return selector.computers }
        let sessions = try ClientHome.default.sessions.all()
        let selected: [LocalSession]
        if selector.hasSessionFilter || !selector.computers.isEmpty {
            selected = sessions.filter { selector.matches($0) }
            guard !selected.isEmpty else {
                throw TetherClientError(.usage, "no session in this client's list matches \(selector.describe); see tether get")
            }
        } else if allWhenUnselected {
            selected = sessions
        } else {
            throw ValidationError("select sessions with --name, --id or --instance-id (optionally with --computer HOST)")
        }
        var seen = Set<String>()
        return selected.map(\.computerName).filter { seen.insert($0).inserted }
    }
}
