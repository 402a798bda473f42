import TetherIO

/// A destination resolved: where and how to connect, and how it was found out.
public struct SSHResolution: Sendable {
    public var target: SSHTarget
    /// What `ssh -G` printed; nil when Tether's own parser resolved it (no `ssh` binary).
    public var config: SSHResolvedConfig?
    /// The `ssh -G` answer came from the cache.
    public var fromCache: Bool
    /// For `-v`: how it was resolved.
    public var diagnostics: [String]
    /// ssh's own warnings while resolving ("Identity file … not accessible"), for stderr.
    public var warnings: [String]
}

extension SSHConfig {
    /// Resolves `destination` the way `ssh` would connect to it: by asking OpenSSH itself
    /// (`ssh -G`, cached in `overrides.cacheDirectory`), so the system config, `Match` of
    /// every kind, canonicalization and tokens are OpenSSH's. Without an `ssh` binary (or
    /// with `TETHER_SSH_RESOLVER=builtin`), Tether's own parser reads the config file.
    public static func resolution(_ destination: String, overrides: SSHOverrides) throws -> SSHResolution {
        let parsed = try SSHDestination(parsing: destination)
        let configFile = overrides.configFile ?? Environment.get("TETHER_SSH_CONFIG")
        let ssh = Environment.get("TETHER_SSH_RESOLVER") == "builtin" ? nil : Spawn.findExecutable("ssh")
        guard let ssh else {
            if !overrides.options.isEmpty || overrides.jumpHosts != nil {
                throw SSHError(.configuration, host: parsed.host,
                               "-o and -J need OpenSSH's ssh to resolve them, and none was found in PATH")
            }
            let target = try resolve(destination, overrides: overrides)
            return SSHResolution(target: target, config: nil, fromCache: false,
                                 diagnostics: ["resolved with Tether's own ssh config parser (no ssh in PATH, or TETHER_SSH_RESOLVER=builtin): Host, Match host/originalhost/user/localuser/all, Include; no system config, Match exec/canonical, canonicalization"],
                                 warnings: [])
        }
        let arguments = OpenSSHConfigQuery.arguments(
            host: parsed.host, user: overrides.user ?? parsed.user, port: overrides.port ?? parsed.port,
            configFile: configFile, identityFiles: overrides.identityFiles, options: overrides.options,
            jumpHosts: overrides.jumpHosts)
        let home = Environment.homeDirectoryOfCurrentUser()
        let cache = overrides.cacheDirectory.map { SSHConfigCache(directory: $0) }
        let key = SSHConfigCache.Key(ssh: ssh, arguments: arguments)
        var diagnostics: [String] = []
        let config: SSHResolvedConfig
        var fromCache = false
        var warnings: [String] = []
        if let cached = cache?.lookup(key) {
            config = SSHResolvedConfig(parsing: cached)
            fromCache = true
            diagnostics.append("resolved by `ssh \(arguments.joined(separator: " "))` (cached answer: no config file changed)")
        } else {
            let answer = try OpenSSHConfigQuery(arguments: arguments).run(ssh: ssh, host: parsed.host)
            config = answer.config
            warnings = answer.warnings
            diagnostics.append("resolved by `ssh \(arguments.joined(separator: " "))`; read: \(answer.filesRead.isEmpty ? "no config file" : answer.filesRead.joined(separator: ", "))")
            if let cache {
                let defaults = [configFile ?? "\(home)/.ssh/config", "/etc/ssh/ssh_config"]
                cache.store(key, answer: answer, watching: defaults, home: home)
            }
        }
        var target = try target(from: config, alias: parsed.host, configFile: configFile, home: home)
        try apply(overrides, to: &target)
        return SSHResolution(target: target, config: config, fromCache: fromCache,
                             diagnostics: diagnostics, warnings: warnings)
    }

    /// The values Tether connects with, from what `ssh -G` printed. Exposed for the corpus
    /// test that compares them keyword by keyword.
    public static func target(from config: SSHResolvedConfig, alias: String, configFile: String?,
                              home: String = Environment.homeDirectoryOfCurrentUser()) throws -> SSHTarget {
        func bad(_ what: String) -> SSHError {
            SSHError(.configuration, host: alias, "ssh -G printed \(what)")
        }
        let hostName = config.value("hostname") ?? alias
        guard let port = Int(config.value("port") ?? "22"), (1...65535).contains(port) else {
            throw bad("an invalid port '\(config.value("port") ?? "")'")
        }
        let user = config.value("user") ?? Environment.userName()
        var preferences = SSHPreferences()
        preferences.hostKeyAlias = config.value("hostkeyalias").flatMap { $0.lowercased() == "none" ? nil : $0 }
        let paths = PathExpansion(home: home, localUser: Environment.userName(), remoteUser: user,
                                  hostName: hostName, alias: alias, port: port,
                                  hostKeyAlias: preferences.hostKeyAlias)
        var seen = Set<String>()
        let identities = try config.values("identityfile").map { try paths.expand($0, what: "IdentityFile") }
            .filter { seen.insert($0).inserted }
        let noneFiltered: ([String]) -> [String] = { $0.filter { $0.lowercased() != "none" } }
        let policy: HostKeyPolicy
        switch config.value("stricthostkeychecking")?.lowercased() ?? "ask" {
        case "ask": policy = .ask
        case "yes", "true": policy = .yes
        case "accept-new": policy = .acceptNew
        case "no", "false", "off": policy = .no
        case let other: throw bad("StrictHostKeyChecking '\(other)'")
        }
        let connectTimeout = config.value("connecttimeout").flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
        let serverAlive = config.value("serveraliveinterval").flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
        var target = SSHTarget(
            alias: alias, hostName: hostName, port: port, user: user,
            identityFiles: identities, identitiesOnly: config.flag("identitiesonly") ?? false,
            knownHostsFiles: noneFiltered(config.words("userknownhostsfile")), strictHostKeyChecking: policy,
            connectTimeout: connectTimeout, serverAliveInterval: serverAlive)
        target.globalKnownHostsFiles = noneFiltered(config.words("globalknownhostsfile"))
        // ssh -G always prints a count (3 when unset); it only matters with an interval.
        if serverAlive != nil { target.serverAliveCountMax = config.value("serveralivecountmax").flatMap { Int($0) } }

        preferences.bindAddress = config.value("bindaddress")
        preferences.addressFamily = config.value("addressfamily") ?? "any"
        preferences.ciphers = config.list("ciphers")
        preferences.macs = config.list("macs")
        preferences.kexAlgorithms = config.list("kexalgorithms")
        preferences.hostKeyAlgorithms = config.list("hostkeyalgorithms")
        if let agent = config.value("identityagent") {
            preferences.identityAgent = agent == "SSH_AUTH_SOCK" ? nil
                : agent.lowercased() == "none" ? "none"
                : try paths.expand(agent.hasPrefix("$") && !agent.hasPrefix("${") ? "${\(agent.dropFirst())}" : agent,
                                   what: "IdentityAgent")
        }
        preferences.certificateFiles = try config.values("certificatefile").filter { $0.lowercased() != "none" }
            .map { try paths.expand($0, what: "CertificateFile") }
        preferences.hashKnownHosts = config.flag("hashknownhosts") ?? false
        preferences.publicKeyAuthentication = config.flag("pubkeyauthentication") ?? true
        preferences.passwordAuthentication = config.flag("passwordauthentication") ?? true
        preferences.keyboardInteractiveAuthentication = config.flag("kbdinteractiveauthentication") ?? true
        preferences.batchMode = config.flag("batchmode") ?? false
        preferences.passwordPrompts = config.value("numberofpasswordprompts").flatMap { Int($0) } ?? 3
        if let order = config.value("preferredauthentications") {
            preferences.preferredAuthentications = order.split(separator: ",").map(String.init)
        }
        target.preferences = preferences

        if let command = config.value("proxycommand"), command.lowercased() != "none" {
            let expanded = try paths.expand(command, what: "ProxyCommand", tilde: false)
            // exec: the shell steps aside, so signals and the exit status are the command's.
            target.proxyCommand = ["/bin/sh", "-c", "exec " + expanded]
        } else if let jump = config.value("proxyjump"), jump.lowercased() != "none" {
            target.proxyCommand = try proxyJumpArgv(jump, target: target, configFile: configFile, alias: alias)
        }
        return target
    }

    /// ProxyJump run as OpenSSH runs it: `ssh [-F file] [-J earlier,hops] -W host:port --
    /// ssh://last-hop`, so the jump hosts are configured, authenticated and verified by
    /// OpenSSH from the same file.
    static func proxyJumpArgv(_ value: String, target: SSHTarget, configFile: String?, alias: String) throws -> [String] {
        let hops = value.filter { !$0.isWhitespace }.split(separator: ",", omittingEmptySubsequences: false)
            .map(String.init)
        guard let last = hops.last, !hops.contains(where: \.isEmpty) else {
            throw SSHError(.configuration, host: alias, "ProxyJump needs [user@]host[:port] jump hosts separated by commas")
        }
        var argv = ["ssh"]
        if let configFile { argv += ["-F", configFile] }
        if hops.count > 1 { argv += ["-J", hops.dropLast().joined(separator: ",")] }
        argv += ["-W", target.endpoint, "--", last.hasPrefix("ssh://") ? last : "ssh://" + last]
        return argv
    }

    /// Tether's own options (`--connect-timeout`, `--strict-host-key-checking`) win.
    static func apply(_ overrides: SSHOverrides, to target: inout SSHTarget) throws {
        if let value = overrides.connectTimeout {
            guard value > 0 else {
                throw SSHError(.configuration, host: target.alias, "connect timeout must be positive, not \(value)")
            }
            target.connectTimeout = value
        }
        if let value = overrides.strictHostKeyChecking { target.strictHostKeyChecking = value }
        if let value = overrides.subsystem { target.subsystem = value }
    }
}
