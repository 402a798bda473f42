import Glibc
import TetherIO
import TetherProtocol

/// The per-user registry process: one per runtime directory, started on demand by the
/// subsystem, holding the durable session table and the runspaces' control connections.
public enum RegistryServer {
    /// Runs the registry until SIGTERM/SIGINT. `readyFD` gets "ok\n" once listening, or
    /// "error: …\n" if the registry can't start. Exits 0 at once, quietly, if another
    /// registry already runs for these directories.
    public static func run(paths: HostPaths, readyFD: Int32?) -> Never {
        let paths = paths.absolute
        // A hung-up login or a vanished peer must never kill the registry; SIGHUP stays
        // ignored in the runspaces it spawns, too.
        Signals.ignore(SIGHUP)
        Signals.ignore(SIGPIPE)
        // Runspaces are our children; let the kernel reap them (their fate reaches us
        // through the control connection, not through wait()).
        Signals.ignore(SIGCHLD)
        if let readyFD { setCloseOnExec(readyFD) }

        do {
            try paths.prepare()
        } catch {
            fail("cannot use the runtime or state directory: \(error)", readyFD: readyFD)
        }
        // Hold no directory busy (a runspace starts its bash in $HOME on its own).
        _ = chdir("/")
        let log = HostLog(path: paths.logFile, tag: "registry")
        let inherited = RegistryHandOver.inherited()
        let pidLock: RegistryPIDLock
        if let inherited {
            // An earlier image of this process handed over: its lock is ours already.
            pidLock = RegistryPIDLock(fd: inherited.lock)
            log.write("took over from the previous image of this registry (pid \(getpid())): \(tetherVersionLine("tether-subsystem"))")
        } else { do {
            switch try RegistryPIDLock.acquire(path: paths.registryPIDFile) {
            case .acquired(let lock):
                pidLock = lock
            case .heldByAnotherRegistry(let pid):
                // The no-double-registry guarantee. Say nothing on the ready pipe: the
                // starter sees it close and connects to the registry that is running.
                log.write("another registry (pid \(pid.map(String.init) ?? "unknown")) holds \(paths.registryPIDFile); exiting")
                exit(0)
            }
        } catch {
            fail("cannot lock \(paths.registryPIDFile): \(error)", readyFD: readyFD, log: log)
        } }

        let reactor: Reactor
        do {
            reactor = try Reactor()
        } catch {
            fail("cannot start the event loop: \(error)", readyFD: readyFD, log: log)
        }
        let policy = HostPolicy.load(paths: paths, log: log)
        let registry = Registry(reactor: reactor, paths: paths, log: log, policy: policy)
        log.write("starting (runtime \(paths.runtimeDirectory), state \(paths.stateDirectory), minimum idle timeout \(HostPolicy.seconds(policy.minimumIdleTimeout)))")
        // Runspaces the table doesn't name (it was lost or damaged) are asked who they are
        // before anyone is answered, so the first `list` already shows them.
        var recovering = true
        var loopRuns = false
        registry.loadAndAdopt {
            recovering = false
            if loopRuns { reactor.stop() }
        }
        if recovering {
            loopRuns = true
            reactor.run()
            loopRuns = false
        }

        var peers: [Int: RegistryPeer] = [:]
        var peerNumber = 0
        var handOverIfReplaced: () -> Void = {}
        let listener: UnixListener
        do {
            listener = try UnixListener(reactor: reactor, path: paths.registrySocket, inheritedFD: inherited?.registry, onAccept: { fd in
                peerNumber += 1
                let number = peerNumber
                let peer = RegistryPeer(fd: fd, registry: registry, number: number)
                peer.onClose = {
                    peers[number] = nil
                    if peers.isEmpty { handOverIfReplaced() }
                }
                peers[number] = peer
            }, onRefused: { error in
                log.write("refused a connection: \(error)")
            })
        } catch {
            fail("cannot listen on \(paths.registrySocket): \(error)", readyFD: readyFD, log: log)
        }

        // Without the gateway, clients simply keep coming in through sshd's subsystem.
        let gateway: Gateway?
        do {
            gateway = try Gateway(reactor: reactor, paths: paths, log: log, inheritedFD: inherited?.gateway)
        } catch {
            log.write("no gateway socket (clients will use the subsystem): \(error)")
            gateway = nil
        }

        // Sockets and the pid file made again if a /tmp cleaner removes them under us.
        let runtimeGuard = RuntimeDirectoryGuard(registry: registry, pidLock: pidLock,
                                                 sockets: [listener] + (gateway.map { [$0.listener] } ?? []))
        runtimeGuard.start()

        do {
            try TerminationSignals.watch(reactor: reactor, signals: [SIGTERM, SIGINT, SIGUSR1]) { signal in
                if signal == SIGUSR1 {
                    // tmux's convention: "make your socket again".
                    runtimeGuard.restore(why: "SIGUSR1")
                    return
                }
                log.write("stopping on \(Signals.name(signal))")
                listener.close()
                gateway?.close()
                registry.shutdown()
                _ = runtimeGuard
                exit(0)
            }
        } catch {
            fail("cannot watch for SIGTERM: \(error)", readyFD: readyFD, log: log)
        }

        // An upgrade replaced the file we run from: once no subsystem is connected and
        // nothing is in flight, become the new binary (RegistryHandOver.swift).
        let image = RegistryImage.current()
        var refused: RegistryImage.FileIdentity?
        handOverIfReplaced = {
            guard peers.isEmpty, registry.isQuiet, let image, let replacement = image.replacement(),
                  replacement != refused else { return }
            guard RegistryHandOver.answersLikeASubsystem(image.path) else {
                refused = replacement
                log.write("\(image.path) was replaced, but the new file does not answer --version like tether-subsystem; not handing over to it")
                return
            }
            log.write("\(image.path) was replaced (an upgrade): handing over to it, keeping the sockets")
            registry.shutdown()
            let error = RegistryHandOver.exec(image.path, lock: runtimeGuard.pidLockFD, registry: listener.fd, gateway: gateway?.fd)
            refused = replacement
            log.write("could not hand over: \(error); serving on")
        }

        if let readyFD { report("ok\n", to: readyFD) }
        log.write("listening on \(paths.registrySocket)")
        reactor.run()
        exit(0)
    }

    private static func fail(_ message: String, readyFD: Int32?, log: HostLog? = nil) -> Never {
        log?.write(message)
        if let readyFD {
            report("error: \(message)\n", to: readyFD)
        } else {
            report("tether-subsystem registry: \(message)\n", to: 2)
        }
        exit(1)
    }

    /// Writes one line to the ready pipe and closes it, so the starter's read ends.
    private static func report(_ line: String, to fd: Int32) {
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if fd > 2 { close(fd) }
    }
}
