import TetherIO

/// Resolves what the user typed into an `SSHTarget`, the way OpenSSH reads ~/.ssh/config.
public enum SSHConfig {
    /// Parses "user@host:port", "host", "user@host", "[v6]:port"; applies the ssh config file
    /// (overrides.configFile, else $TETHER_SSH_CONFIG, else ~/.ssh/config; missing file = empty)
    /// for Host patterns (*, ?, !negation, multiple patterns; first value wins like OpenSSH),
    /// HostName, Port, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile,
    /// StrictHostKeyChecking, ConnectTimeout, ServerAliveInterval; then overrides win.
    ///
    /// Precedence: overrides, then what the destination says (user@, :port), then the file.
    /// Also honoured: Include, Match all/host/originalhost/user/localuser,
    /// GlobalKnownHostsFile, ProxyCommand (%h %p %r %n %% expanded, run by /bin/sh) and
    /// ProxyJump (run as OpenSSH does it: `ssh -W [host]:port jump`, with `-J` for the
    /// hops before the last and `-F` when the config file is not the default one).
    public static func resolve(_ destination: String, overrides: SSHOverrides) throws -> SSHTarget {
        let parsed = try SSHDestination(parsing: destination)
        let home = Environment.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()
        let configPath = overrides.configFile ?? Environment.get("TETHER_SSH_CONFIG") ?? "\(home)/.ssh/config"
        var evaluator = SSHConfigEvaluator(alias: parsed.host, localUser: Environment.userName(), home: home)
        evaluator.remoteUserFromCommandLine = overrides.user ?? parsed.user
        if configPath != "\(home)/.ssh/config" { evaluator.configFileForJumps = configPath }
        try evaluator.process(file: configPath, depth: 0)
        return try evaluator.target(destination: parsed, overrides: overrides)
    }

    /// The same, from config text instead of a file (tests, `--ssh-config-text`).
    public static func resolve(_ destination: String, configText: String, overrides: SSHOverrides = SSHOverrides()) throws -> SSHTarget {
        let parsed = try SSHDestination(parsing: destination)
        let home = Environment.get("HOME") ?? Environment.homeDirectoryOfCurrentUser()
        var evaluator = SSHConfigEvaluator(alias: parsed.host, localUser: Environment.userName(), home: home)
        evaluator.remoteUserFromCommandLine = overrides.user ?? parsed.user
        try evaluator.process(text: configText, name: "(config text)", depth: 0)
        return try evaluator.target(destination: parsed, overrides: overrides)
    }
}

/// Walks config lines once, keeping the first value of each option for the blocks that
/// apply to the host (OpenSSH's "first obtained value wins").
struct SSHConfigEvaluator {
    let alias: String
    let localUser: String
    let home: String
    var remoteUserFromCommandLine: String?
    /// Passed to the `ssh` a ProxyJump runs (`-F`), so the jump host is read from the same
    /// file; nil for ~/.ssh/config, which ssh reads by itself.
    var configFileForJumps: String?

    private var active = true
    private var first: [String: SSHConfigLine] = [:]
    private var identityFiles: [SSHConfigLine] = []

    /// Options we read; everything else (and there is a lot in real configs) is ignored.
    private static let singleValued: Set<String> = [
        "hostname", "port", "user", "identitiesonly", "userknownhostsfile", "globalknownhostsfile",
        "stricthostkeychecking", "connecttimeout", "serveraliveinterval", "serveralivecountmax", "proxyjump", "proxycommand",
    ]

    init(alias: String, localUser: String, home: String) {
        self.alias = alias
        self.localUser = localUser
        self.home = home
    }

    mutating func process(file path: String, depth: Int) throws {
        guard let text = try ConfigFileReader.read(path) else { return }
        try process(text: text, name: path, depth: depth)
    }

    mutating func process(text: String, name: String, depth: Int) throws {
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            guard let line = try SSHConfigLine.parse(rawLine, file: name, number: number) else { continue }
            try apply(line, depth: depth)
        }
    }

    private mutating func apply(_ line: SSHConfigLine, depth: Int) throws {
        switch line.keyword {
        case "host":
            guard !line.arguments.isEmpty else { throw error(line, "Host needs at least one pattern") }
            active = HostPattern.listMatches(alias, patterns: line.arguments)
        case "match":
            active = try matchCriteria(line)
        case "include":
            guard active else { return }
            guard depth < 16 else { throw error(line, "Include nested too deeply (loop?)") }
            guard !line.arguments.isEmpty else { throw error(line, "Include needs a file name") }
            let saved = active
            for argument in line.arguments {
                var pattern = argument.hasPrefix("~/") ? home + argument.dropFirst(1) : argument
                if !pattern.hasPrefix("/") { pattern = "\(home)/.ssh/\(pattern)" }
                for path in ConfigFileReader.glob(pattern) {
                    try process(file: path, depth: depth + 1)
                }
                active = saved
            }
        case "identityfile":
            guard active else { return }
            guard !line.arguments.isEmpty else { throw error(line, "IdentityFile needs a file name") }
            identityFiles.append(line)
        default:
            // ProxyCommand and ProxyJump share one slot: whichever comes first wins (OpenSSH).
            let slot = line.keyword == "proxycommand" || line.keyword == "proxyjump" ? "proxy" : line.keyword
            guard active, Self.singleValued.contains(line.keyword), first[slot] == nil else { return }
            guard !line.arguments.isEmpty else { throw error(line, "\(line.keyword) needs a value") }
            first[slot] = line
        }
    }

    /// `Match` criteria we can evaluate without running anything; others never match.
    private func matchCriteria(_ line: SSHConfigLine) throws -> Bool {
        var arguments = line.arguments[...]
        guard !arguments.isEmpty else { throw error(line, "Match needs criteria (e.g. 'Match all')") }
        var result = true
        while let criterion = arguments.popFirst() {
            var name = criterion.lowercased()
            let negate = name.hasPrefix("!")
            if negate { name.removeFirst() }
            let matched: Bool
            switch name {
            case "all":
                matched = true
            case "canonical", "final":
                matched = false
            case "host", "originalhost", "user", "localuser":
                guard let value = arguments.popFirst() else {
                    throw error(line, "Match \(name) needs a pattern list")
                }
                let patterns = value.split(separator: ",").map(String.init)
                let subject: String
                switch name {
                case "host": subject = (try? hostNameSoFar()) ?? alias
                case "originalhost": subject = alias
                case "user": subject = remoteUserFromCommandLine ?? first["user"]?.arguments[0] ?? localUser
                default: subject = localUser
                }
                matched = HostPattern.listMatches(subject, patterns: patterns)
            default:
                // exec, tagged, localnetwork…: we can't evaluate them; don't apply the block.
                _ = arguments.popFirst()
                matched = false
            }
            if matched == negate { result = false }
        }
        return result
    }

    private func hostNameSoFar() throws -> String {
        guard let line = first["hostname"] else { return alias }
        return try expander(hostName: alias, remoteUser: localUser, port: 22)
            .expand(line.arguments[0], what: "HostName")
    }

    private func expander(hostName: String, remoteUser: String, port: Int) -> PathExpansion {
        PathExpansion(home: home, localUser: localUser, remoteUser: remoteUser,
                      hostName: hostName, alias: alias, port: port)
    }

    private func error(_ line: SSHConfigLine, _ message: String) -> SSHError {
        SSHError(.configuration, host: alias, "\(line.location): \(message)")
    }

    private func yesNo(_ line: SSHConfigLine) throws -> Bool {
        switch line.arguments[0].lowercased() {
        case "yes", "true": return true
        case "no", "false": return false
        default: throw error(line, "\(line.keyword) must be yes or no, not '\(line.arguments[0])'")
        }
    }

    /// OpenSSH's time format: "10", "10s", "1m30s", units s m h d w.
    private func seconds(_ line: SSHConfigLine) throws -> Double {
        let text = line.arguments[0].lowercased()
        if text == "none" { return 0 }
        var total = 0.0
        var digits = ""
        for character in text {
            if character.isASCII && character.isNumber { digits.append(character); continue }
            let unit: Double
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 604800
            default: throw error(line, "\(line.keyword) '\(text)' is not a time (e.g. 10, 30s, 1m)")
            }
            guard let value = Double(digits) else { throw error(line, "\(line.keyword) '\(text)' is not a time (e.g. 10, 30s, 1m)") }
            total += value * unit
            digits = ""
        }
        if !digits.isEmpty { total += Double(digits)! }
        return total
    }

    func target(destination: SSHDestination, overrides: SSHOverrides) throws -> SSHTarget {
        var port = 22
        if let line = first["port"] {
            guard let value = Int(line.arguments[0]), (1...65535).contains(value) else {
                throw error(line, "Port '\(line.arguments[0])' is not a number from 1 to 65535")
            }
            port = value
        }
        if let value = destination.port { port = value }
        if let value = overrides.port {
            guard (1...65535).contains(value) else {
                throw SSHError(.configuration, host: alias, "port \(value) is not a number from 1 to 65535")
            }
            port = value
        }
        let user = overrides.user ?? destination.user ?? first["user"]?.arguments[0] ?? localUser
        let hostName = try first["hostname"].map {
            try expander(hostName: alias, remoteUser: user, port: port).expand($0.arguments[0], what: "HostName")
        } ?? alias
        let paths = expander(hostName: hostName, remoteUser: user, port: port)

        var identities = try overrides.identityFiles.map { try paths.expand($0, what: "identity file") }
        for line in identityFiles {
            identities.append(try paths.expand(line.arguments[0], what: "IdentityFile"))
        }
        if identities.isEmpty {
            identities = ["id_ed25519", "id_ecdsa", "id_rsa"].map { "\(home)/.ssh/\($0)" }
        }
        var seen = Set<String>()
        identities = identities.filter { seen.insert($0).inserted }

        let knownHosts = try first["userknownhostsfile"].map { line in
            try line.arguments.filter { $0.lowercased() != "none" }.map { try paths.expand($0, what: "UserKnownHostsFile") }
        } ?? ["\(home)/.ssh/known_hosts", "\(home)/.ssh/known_hosts2"]
        let globalKnownHosts = try first["globalknownhostsfile"].map { line in
            try line.arguments.filter { $0.lowercased() != "none" }.map { try paths.expand($0, what: "GlobalKnownHostsFile") }
        } ?? ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]

        var policy = HostKeyPolicy.acceptNew
        if let line = first["stricthostkeychecking"] {
            switch line.arguments[0].lowercased() {
            case "yes", "true", "ask": policy = .yes  // "ask" can't ask here: refuse and explain.
            case "accept-new": policy = .acceptNew
            case "no", "off", "false": policy = .no
            default: throw error(line, "StrictHostKeyChecking must be yes, accept-new, no or ask, not '\(line.arguments[0])'")
            }
        }
        if let value = overrides.strictHostKeyChecking { policy = value }

        var connectTimeout = try first["connecttimeout"].map { try seconds($0) }
        if connectTimeout == 0 { connectTimeout = nil }
        if let value = overrides.connectTimeout {
            guard value > 0 else { throw SSHError(.configuration, host: alias, "connect timeout must be positive, not \(value)") }
            connectTimeout = value
        }
        // 0 (ssh's "off") is also what `ssh -G` reports when unset: the client's default.
        var serverAlive = try first["serveraliveinterval"].map { try seconds($0) }
        if serverAlive == 0 { serverAlive = nil }
        let serverAliveCountMax = try first["serveralivecountmax"].map { line -> Int in
            guard let count = Int(line.arguments[0]), count >= 0 else {
                throw error(line, "ServerAliveCountMax must be a whole number, not '\(line.arguments[0])'")
            }
            return count
        }

        var target = SSHTarget(
            alias: alias, hostName: hostName, port: port, user: user,
            identityFiles: identities,
            identitiesOnly: try first["identitiesonly"].map { try yesNo($0) } ?? false,
            knownHostsFiles: knownHosts, strictHostKeyChecking: policy,
            connectTimeout: connectTimeout, serverAliveInterval: serverAlive,
            subsystem: overrides.subsystem ?? "tether")
        target.globalKnownHostsFiles = globalKnownHosts
        target.serverAliveCountMax = serverAliveCountMax
        target.proxyCommand = try proxyCommand(for: target)
        return target
    }

    /// The command that carries the connection instead of a TCP socket, as an argv: the
    /// first of ProxyCommand and ProxyJump in the file wins (OpenSSH: they exclude each
    /// other, and whichever is set first is used); `none` turns both off.
    private func proxyCommand(for target: SSHTarget) throws -> [String]? {
        guard let line = first["proxy"], line.arguments[0].lowercased() != "none" else { return nil }
        if line.keyword == "proxycommand" {
            let expanded = try expander(hostName: target.hostName, remoteUser: target.user, port: target.port)
                .expand(line.rest, what: "ProxyCommand")
            // exec: the shell steps aside, so signals and the exit status are the command's.
            return ["/bin/sh", "-c", "exec " + expanded]
        }
        let hops = line.rest.filter { !$0.isWhitespace }.split(separator: ",", omittingEmptySubsequences: false)
            .map(String.init)
        guard let last = hops.last, !hops.contains(where: \.isEmpty) else {
            throw error(line, "ProxyJump needs [user@]host[:port] jump hosts separated by commas")
        }
        var argv = ["ssh"]
        if let configFileForJumps { argv += ["-F", configFileForJumps] }
        if hops.count > 1 { argv += ["-J", hops.dropLast().joined(separator: ",")] }
        argv += ["-W", target.endpoint, "--", last.hasPrefix("ssh://") ? last : "ssh://" + last]
        return argv
    }
}
