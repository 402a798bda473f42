import Glibc
import TetherIO
import TetherProtocol
import TetherSSH

/// The client-side keeper: one process per TETHER_HOME that holds a warm SSH connection
/// (a link) per destination and multiplexes the CLI processes' Tether streams over them —
/// OpenSSH's ControlMaster + ControlPersist, started automatically. One thread, one
/// Reactor. See docs/architecture.md, "Client keeper".
///
/// Lifetime: a link nobody uses closes after `persist` seconds; a keeper with no link
/// and no CLI has nothing to keep and exits after `emptyGrace` seconds.
public final class Keeper {
    public struct Settings: Sendable {
        /// Seconds a link stays open without a CLI (`TETHER_KEEPER_PERSIST`, default 600).
        public var persist: Double = 600
        /// Seconds a keeper with nothing to keep waits for a CLI before exiting.
        public var emptyGrace: Double = 5
        /// A link the host has said nothing on for this long is pinged before reuse.
        public var quietCheckAfter: Double = 30
        /// Seconds to wait for that ping's answer before dropping the link.
        public var keepaliveTimeout: Double = 5
        /// How long a "needs a passphrase" answer is remembered for a destination.
        public var fallbackMemory: Double = 60

        public init() {}

        /// The defaults, with `TETHER_KEEPER_PERSIST` and `TETHER_KEEPER_CHECK_AFTER` (seconds
        /// of silence from a host before a link is pinged on reuse) applied.
        public static func fromEnvironment() -> Settings {
            var settings = Settings()
            if let text = Environment.get("TETHER_KEEPER_PERSIST"), let seconds = Double(text), seconds >= 0 {
                settings.persist = seconds
                settings.emptyGrace = min(settings.emptyGrace, max(seconds, 1))
            }
            if let text = Environment.get("TETHER_KEEPER_CHECK_AFTER"), let seconds = Double(text), seconds >= 0 {
                settings.quietCheckAfter = seconds
            }
            return settings
        }
    }

    private let reactor: Reactor
    private let socketPath: String
    private let settings: Settings
    private let log: KeeperLog
    private var listener: UnixListener?
    private var socketIdentity: (dev: UInt, ino: UInt)?
    private var clients: [Int: KeeperClient] = [:]
    private var nextClientNumber = 1
    private var links: [KeeperLinkKey: KeeperLink] = [:]
    /// Destinations whose login needs a typed passphrase: answered "connect directly" at
    /// once for a while instead of trying (and failing) the login again each time.
    private var needsTerminal: [KeeperLinkKey: (until: UInt64, keys: [String], question: LoginQuestion?)] = [:]
    /// Each host's gateway socket, as its last hello named it: a link made again after the
    /// last one closed (idle, or cut) opens its channel there — no login shell.
    private var gateways: [KeeperLinkKey: String] = [:]
    private var exitTimer: TimerHandle?
    private var stopping = false
    /// It removed its own socket on the way out (no newer keeper had taken the path).
    private var leftItsPlace = false

    init(reactor: Reactor, socketPath: String, settings: Settings, log: KeeperLog) {
        self.reactor = reactor
        self.socketPath = socketPath
        self.settings = settings
        self.log = log
    }

    /// Runs a keeper on `socketPath` until it exits; reports readiness (or why not) on
    /// `readyFD`. Returns the process exit status.
    public static func run(socketPath: String, readyFD: Int32?, settings: Settings = .fromEnvironment()) -> Int32 {
        Signals.ignore(SIGPIPE)
        closeInheritedDescriptors(keeping: readyFD)
        let paths = KeeperPaths(socket: socketPath)
        let ready = ReadyReport(fd: readyFD)
        do {
            try SecureDirectory.prepare(paths.directory)
        } catch {
            ready.failed("socket directory: \(error)")
            return 1
        }
        let log = KeeperLog(path: paths.log)
        let reactor: Reactor
        do {
            reactor = try Reactor()
        } catch {
            ready.failed("\(error)")
            return 1
        }
        let keeper = Keeper(reactor: reactor, socketPath: socketPath, settings: settings, log: log)
        do {
            try keeper.listen()
        } catch {
            log.write("cannot listen on \(socketPath): \(error)")
            ready.failed("cannot listen on \(socketPath): \(error)")
            return 1
        }
        log.write("listening on \(socketPath) (links persist \(Int(settings.persist)) s)")
        ready.ok()
        keeper.updateEmptiness()
        // Returns once everything is closed (after `shutdown`): no descriptors, no timers.
        reactor.run(untilIdle: true)
        if keeper.leftItsPlace {
            // A clean exit leaves nothing behind (a test suite makes hundreds of homes);
            // a keeper that crashed keeps its log for whoever reads the CLI's message.
            unlink(paths.lock)
            unlink(paths.log)
        } else {
            log.write("exiting")
        }
        return 0
    }

    private func listen() throws {
        listener = try UnixListener(reactor: reactor, path: socketPath,
            onAccept: { [weak self] fd in self?.accepted(fd) },
            onRefused: { [weak self] error in self?.log.write("refused a connection: \(error)") })
        var info = stat()
        if stat(socketPath, &info) == 0 { socketIdentity = (UInt(info.st_dev), UInt(info.st_ino)) }
    }

    // MARK: CLIs

    private func accepted(_ fd: Int32) {
        guard !stopping else { close(fd); return }
        let client = KeeperClient(number: nextClientNumber, reactor: reactor, socket: fd)
        nextClientNumber += 1
        clients[client.number] = client
        client.onRequest = { [weak self] client, request in self?.handle(request, from: client) }
        client.log = { [weak self] line in self?.log.write(line) }
        client.onClosed = { [weak self] client in
            self?.clients[client.number] = nil
            self?.updateEmptiness()
        }
        client.start()
        updateEmptiness()
    }

    private func handle(_ request: KeeperRequest, from client: KeeperClient) {
        switch request {
        case .status:
            client.finish(with: .status(status()))
        case .stop:
            log.write("asked to stop")
            client.finish(with: .stopping)
            shutdown()
        case .open(let open):
            self.open(open, for: client, retryStale: true)
        }
    }

    private func open(_ open: KeeperOpen, for client: KeeperClient, retryStale: Bool) {
        guard open.version == keeperWireVersion else {
            client.finish(with: .fallback(reason: "the keeper speaks keeper protocol \(keeperWireVersion), not \(open.version)"))
            return
        }
        let key = KeeperLinkKey(open)
        // A CLI that brings the passphrases the last fallback asked for gets a new try.
        if let remembered = needsTerminal[key], open.passphrases == nil, open.logins == nil {
            if Reactor.now() < remembered.until {
                client.finish(with: .fallback(reason: remembered.question == nil
                                                ? "a key needs its passphrase typed (the keeper has no terminal)"
                                                : "the login needs a person's answer (the keeper has no terminal)",
                                              keys: remembered.keys, question: remembered.question))
                return
            }
            needsTerminal[key] = nil
        }
        let existing = links[key].flatMap { $0.phase == .closed ? nil : $0 }
        // A CLI of another release than the one whose hello opened the link: the link's
        // protocol may be one it doesn't speak, so it connects on its own.
        let offered = open.hello.offered(version: tetherOldestProtocolVersion)
        if let existing, existing.isReady, !offered.contains(existing.protocolVersion) {
            client.finish(with: .fallback(reason: "the keeper's link to \(open.target.alias) speaks protocol \(existing.protocolVersion), this tether speaks \(offered)"))
            return
        }
        let link = existing ?? makeLink(open)
        // -v: say what the keeper did, so nobody needs its log.
        let said = open.verbose == true
            ? [existing == nil ? "keeper: dialled a new link to \(open.target.alias) (pid \(getpid()))"
                : "keeper: reused its link to \(open.target.alias) (\(link.phase == .ready ? "warm" : "still connecting"), pid \(getpid()))"]
            : []
        if link.isReady && link.quietSeconds > settings.quietCheckAfter {
            link.checkAlive(timeout: settings.keepaliveTimeout) { [weak self, weak client] alive in
                guard let self, let client else { return }
                if alive {
                    client.opened(link, notices: said + (open.verbose == true ? ["keeper: the link was quiet, a ping said it is alive"] : []))
                } else if retryStale {
                    self.open(open, for: client, retryStale: false)
                } else {
                    client.finish(with: .failed(KeeperFailure(.connection, "connection lost")))
                }
            }
            return
        }
        link.whenReady { [weak self, weak client] outcome in
            guard let self, let client else { return }
            switch outcome {
            case .ready(let notices):
                self.needsTerminal[key] = nil
                if let gateway = link.hostGateway { self.gateways[key] = gateway }
                client.opened(link, notices: said + notices)
            case .failed(let failure):
                client.finish(with: .failed(failure))
            case .fallback(let reason, let keys, let question):
                // A question's attempt count belongs to the CLI that answers it: a new
                // CLI starts from the first attempt.
                var fresh = question
                fresh?.attempt = 1
                self.needsTerminal[key] = (Reactor.now() + UInt64(self.settings.fallbackMemory * 1e9), keys, fresh)
                client.finish(with: .fallback(reason: reason, keys: keys, question: question))
            }
        }
    }

    private func makeLink(_ open: KeeperOpen) -> KeeperLink {
        var open = open
        if open.target.gatewaySocket == nil {
            open.target.gatewaySocket = gateways[KeeperLinkKey(open)]
        }
        let link = KeeperLink(open: open, reactor: reactor, log: log, persist: settings.persist)
        links[link.key] = link
        link.onClosed = { [weak self] link in
            guard let self else { return }
            if self.links[link.key] === link { self.links[link.key] = nil }
            self.updateEmptiness()
        }
        link.start()
        return link
    }

    private func status() -> KeeperStatus {
        KeeperStatus(pid: getpid(), socket: socketPath, persistSeconds: settings.persist,
                     clients: clients.count - 1,  // not counting the one asking
                     links: links.values.map { $0.status() }.sorted { $0.destination < $1.destination })
    }

    // MARK: Lifetime

    /// Nothing to keep (no link, no CLI): exit after a short grace, unless a CLI comes.
    private func updateEmptiness() {
        guard !stopping else { return }
        if clients.isEmpty && links.isEmpty {
            guard exitTimer == nil else { return }
            exitTimer = reactor.schedule(after: settings.emptyGrace) { [weak self] in
                guard let self else { return }
                self.exitTimer = nil
                guard self.clients.isEmpty && self.links.isEmpty else { return }
                self.log.write("no links and no CLIs for \(Int(self.settings.emptyGrace)) s")
                self.shutdown()
            }
        } else if let timer = exitTimer {
            reactor.cancel(timer)
            exitTimer = nil
        }
    }

    /// Stops listening, closes every link cleanly and lets the loop run dry.
    private func shutdown() {
        guard !stopping else { return }
        stopping = true
        if let exitTimer { reactor.cancel(exitTimer) }
        exitTimer = nil
        if let listener {
            // Remove the socket only if it is still ours: a keeper started after ours
            // (it found no answer) owns that path now.
            var info = stat()
            let stillOurs = stat(socketPath, &info) == 0
                && socketIdentity.map { $0.dev == UInt(info.st_dev) && $0.ino == UInt(info.st_ino) } == true
            listener.close(unlinkPath: stillOurs)
            leftItsPlace = stillOurs
        }
        listener = nil
        for link in Array(links.values) { link.close() }
        links.removeAll()
        for client in Array(clients.values) { client.close() }
        // A safety net: SSH teardowns are bounded (2 s), but a keeper must never linger.
        alarm(10)
    }
}

/// A long-lived process must not hold on to descriptors the CLI that started it happened
/// to inherit (a pipe someone waits on for EOF would never see it). Those are the ones
/// that survived `exec` — without close-on-exec; everything opened since is marked.
private func closeInheritedDescriptors(keeping kept: Int32?) {
    guard let directory = opendir("/proc/self/fd") else { return }
    var inherited: [Int32] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let fd = Int32(name), fd > 2, fd != kept, fd != dirfd(directory) else { continue }
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 && flags & FD_CLOEXEC == 0 { inherited.append(fd) }
    }
    closedir(directory)
    inherited.forEach { close($0) }
}

/// The ready pipe: "ok\n" once listening, or "error: why\n"; then closed.
private struct ReadyReport {
    let fd: Int32?

    func ok() { say("ok\n") }
    func failed(_ why: String) { say("error: \(why)\n") }

    private func say(_ text: String) {
        guard let fd, fd >= 0 else { return }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
