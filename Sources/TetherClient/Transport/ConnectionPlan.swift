import TetherIO
import TetherSSH

/// How one destination will be reached, decided before any socket is opened: the ssh
/// config resolved by OpenSSH (`ssh -G`, cached), and the transport — libssh2 unless the
/// destination needs what only `ssh` can do (`LibSSH2Limits`), or the user forced one.
///
/// Made off the event loop (`TetherClient.connect` runs it in the calling task): an
/// uncached `ssh -G` is a process start, and fifty hosts must not queue behind it on the
/// loop's thread.
struct ConnectionPlan: Sendable {
    enum Route: Sendable {
        case libssh2(SSHTarget)
        case openssh
    }

    var destination: String
    var options: ConnectionOptions
    var route: Route
    var resolution: SSHResolution?

    /// For the OpenSSH route chosen automatically (not forced): ssh runs as a ControlMaster
    /// of ours, so later commands share one warm connection as libssh2's go through the
    /// keeper — unless the config has a ControlPath of its own or the keeper is off.
    var sharesOpenSSHConnection: Bool {
        guard case .openssh = route, options.effectiveTransport == .auto,
              let config = resolution?.config else { return false }
        switch Environment.get("TETHER_KEEPER")?.lowercased() {
        case "0", "off", "no", "false": return false
        default: break
        }
        return (config.value("controlpath") ?? "none").lowercased() == "none"
    }

    static func make(destination: String, options: ConnectionOptions) throws -> ConnectionPlan {
        let preference = options.effectiveTransport
        let say = { (line: String) in SSHNotice.printToStandardError("\(destination): \(line)") }
        // Without -v, each note is said once per process: a resume loop reconnecting every
        // 50 ms must not repeat it.
        let sayOnce = { (line: String) in if SaidOnce.first("\(destination): \(line)") { say(line) } }
        if preference == .openssh {
            if options.verbosity > 0 { say("transport: OpenSSH's ssh (forced: TETHER_TRANSPORT or --transport)") }
            return ConnectionPlan(destination: destination, options: options, route: .openssh, resolution: nil)
        }
        let resolution = try resolve(destination, options: options)
        resolution.warnings.forEach { options.verbosity > 0 ? say($0) : sayOnce($0) }
        if options.verbosity > 0 { resolution.diagnostics.forEach { say($0) } }
        var target = resolution.target
        target.gatewaySocket = options.gatewaySocket
        if preference == .libssh2 {
            if options.verbosity > 0 { say("transport: libssh2 (forced: TETHER_TRANSPORT or --transport)") }
            return ConnectionPlan(destination: destination, options: options, route: .libssh2(target), resolution: resolution)
        }
        let reasons = LibSSH2Limits.reasons(target: target, config: resolution.config)
        guard let first = reasons.first else {
            if options.verbosity > 0 { say("transport: libssh2 (nothing in this destination's config needs OpenSSH)") }
            return ConnectionPlan(destination: destination, options: options, route: .libssh2(target), resolution: resolution)
        }
        if options.verbosity > 0 {
            reasons.forEach { say("transport: OpenSSH's ssh: \($0)") }
        } else {
            sayOnce("using OpenSSH's ssh: \(first)\(reasons.count > 1 ? " (and \(reasons.count - 1) more; -v lists them)" : "")")
        }
        return ConnectionPlan(destination: destination, options: options, route: .openssh, resolution: resolution)
    }

    /// `destination` through OpenSSH's resolution with the options as overrides; a bad
    /// config is a connection-level error naming the host, like ssh's own.
    static func resolve(_ destination: String, options: ConnectionOptions) throws -> SSHResolution {
        var overrides = SSHOverrides(
            port: options.port, user: options.user, identityFiles: options.identityFiles,
            configFile: options.effectiveConfigFile, subsystem: options.subsystem,
            connectTimeout: options.connectTimeout,
            strictHostKeyChecking: options.strictHostKeyChecking.flatMap { HostKeyPolicy(rawValue: $0.rawValue) })
        overrides.options = options.sshOptions
        overrides.jumpHosts = options.jumpHosts
        if Environment.get("TETHER_SSH_CONFIG_CACHE") != "0" {
            overrides.cacheDirectory = KeeperPaths.runtimeDirectory
        }
        do {
            return try SSHConfig.resolution(destination, overrides: overrides)
        } catch let error as SSHError {
            throw TetherClientError(.connection, host: destination, error.message)
        } catch {
            throw TetherClientError(.connection, host: destination, "\(error)")
        }
    }
}

/// Notes already said by this process.
enum SaidOnce {
    private static let lock = Lock()
    nonisolated(unsafe) private static var said = Set<String>()  // guarded by lock

    /// True the first time `note` is passed.
    static func first(_ note: String) -> Bool {
        lock.withLock { said.insert(note).inserted }
    }
}
