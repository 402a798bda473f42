import TetherConfiguration
import TetherIO
import TetherProtocol

/// The host admin's session configurations, as the registry enforces them. The registry
/// runs as the user, but reads only files the admin controls (`ConfigurationDirectory`'s
/// ownership rules) and asks the group database, never the client, who the user is — a
/// client only names a configuration. Read fresh for every request, so an admin's edit
/// applies to the next session.
extension Registry {
    var configurationDirectory: ConfigurationDirectory {
        ConfigurationDirectory(path: paths.configurationDirectory)
    }

    /// `configurations`: what this user may open, enabled and without errors.
    func usableConfigurations() -> [ConfigurationInfo] {
        let account = UnixAccount.current()
        let contents = configurationDirectory.loadAll()
        for diagnostic in contents.diagnostics {
            log.write("configuration problem (run tether-subsystem check-configurations): \(diagnostic)")
        }
        return contents.configurations
            .filter { $0.enabled && $0.access.refusal(user: account.name, groups: account.groups, kind: $0.kind) == nil }
            .map { ConfigurationInfo(name: $0.name, kind: $0.kind.rawValue, description: $0.description) }
    }

    /// The configuration `create` asked for, if this user may open one more session of it.
    func configurationForNewSession(_ name: String) -> Result<SessionConfiguration, ErrorBody> {
        let configuration: SessionConfiguration
        switch configurationDirectory.load(name) {
        case .failure(let failure):
            if failure.notFound {
                let usable = usableConfigurations().map(\.name)
                let known = usable.isEmpty ? "none is available to you" : "available to you: \(usable.joined(separator: ", "))"
                return .failure(ErrorBody(.badRequest, "unknown session configuration '\(name)' on this host (\(known))"))
            }
            log.write("configuration \(name) can't be used: \(failure.summary)")
            return .failure(ErrorBody(.unavailable,
                "session configuration '\(name)' has errors and can't be used; the host admin can see them with tether-subsystem check-configurations"))
        case .success(let found):
            configuration = found
        }
        guard configuration.enabled else {
            return .failure(ErrorBody(.permissionDenied, "session configuration '\(name)' is disabled on this host (Enabled no)"))
        }
        let account = UnixAccount.current()
        if let refusal = configuration.access.refusal(user: account.name, groups: account.groups, kind: configuration.kind) {
            log.write("refused a session of configuration \(name): \(refusal)")
            return .failure(ErrorBody(.permissionDenied, "you may not use session configuration '\(name)': \(refusal)"))
        }
        if let most = configuration.maxSessionsPerUser {
            let open = (Array(sessions.values) + Array(starting.values))
                .filter { $0.info.configuration == name && $0.info.state == .running }
            if open.count >= most {
                let names = open.map(\.info.name).sorted().joined(separator: ", ")
                return .failure(ErrorBody(.permissionDenied,
                    "session configuration '\(name)' allows \(most) session\(most == 1 ? "" : "s") per user (MaxSessionsPerUser) and you have \(open.count) (\(names)); remove one first"))
            }
        }
        return .success(configuration)
    }

    /// The most idle timeout a session of `name` may have, if its configuration sets one.
    func maximumIdleTimeout(ofConfiguration name: String) -> Double? {
        guard case .success(let configuration) = configurationDirectory.load(name) else { return nil }
        return configuration.maxIdleTimeout
    }

    func problem(withIdleTimeout seconds: Double, maximum: Double?, configuration name: String) -> String? {
        if let problem = policy.problem(withIdleTimeout: seconds) { return problem }
        if let maximum, seconds > maximum {
            return "idle timeout of \(Int(seconds))s is above the \(Int(maximum))s that session configuration '\(name)' allows (MaxIdleTimeout)"
        }
        return nil
    }
}
