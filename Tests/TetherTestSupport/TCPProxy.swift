import Foundation
import Glibc
import CTetherPosix
import TetherIO

/// A TCP proxy on 127.0.0.1 for fault-injection tests: it forwards every connection to a
/// target port (an `SSHDFixture`'s sshd) and can break the network on command.
///
///     let proxy = try TCPProxy(targetPort: host.port)
///     defer { proxy.stop() }
///     // ssh -p \(proxy.port) -o HostKeyAlias=[127.0.0.1]:\(host.port) …
///     proxy.cut()                    // every current connection ends with an RST, both ends
///     proxy.stall(); proxy.resume()  // a frozen network: sockets stay open, no byte moves
///     try proxy.setRefuseNew(true)   // new connections get ECONNREFUSED
///
/// The proxy runs a `Reactor` on a thread of its own; the controls hop onto it and return
/// once done, so after `cut()` the resets have been sent and after `stall()` no further
/// byte is forwarded. Nothing sleeps.
public final class TCPProxy: @unchecked Sendable {
    /// Counters since the proxy started (bytes are counted as written to the far side).
    public struct Statistics: Sendable, Equatable {
        /// Connections accepted and forwarded (not those refused).
        public var accepted = 0
        /// Connections open right now.
        public var open = 0
        /// Connections ended by `cut()`.
        public var cut = 0
        /// Bytes from clients written to the target.
        public var bytesToTarget: UInt64 = 0
        /// Bytes from the target written to clients.
        public var bytesFromTarget: UInt64 = 0
    }

    /// The port clients connect to (127.0.0.1).
    public let port: UInt16
    public let targetPort: UInt16

    private let reactor: Reactor
    /// Confined to the loop thread: only touched inside `onLoop` and the loop's handlers.
    private let core: TCPProxyCore
    private let counters = Counters()
    private let stateLock = Lock()
    private var stopped = false                // guarded by stateLock
    private let loopEnded = DispatchSemaphore(value: 0)

    /// Listens on 127.0.0.1:0 (the kernel picks the port) and forwards to
    /// 127.0.0.1:`targetPort`.
    /// `delay`: seconds each byte waits in each direction (a long path's latency), for
    /// every connection.
    public init(targetPort: UInt16, delay: Double = 0) throws {
        Processes.ignoreSIGPIPE()
        self.targetPort = targetPort
        reactor = try Reactor()
        let listener = try TCPProxy.listen(port: 0)
        port = try TCPProxy.boundPort(listener)
        core = TCPProxyCore(reactor: reactor, listener: listener, port: port, targetPort: targetPort, delay: delay)
        core.count = { [counters] change in counters.update(change) }
        core.start()
        let thread = Thread { [reactor, loopEnded] in
            reactor.run()
            loopEnded.signal()
        }
        thread.name = "tcp-proxy-\(port)"
        thread.start()
    }

    deinit { stop() }

    public var statistics: Statistics { counters.snapshot }

    // MARK: Faults

    /// Ends every current connection abruptly: both sockets of each are closed with
    /// SO_LINGER 0, so the client and the target each get an RST ("connection reset by
    /// peer"), as when a NAT box or a VPN drops its state. New connections still work.
    public func cut() {
        onLoop { $0.cutAll() }
    }

    /// Stops forwarding in both directions on every connection, current and new, while
    /// keeping all sockets open: what a frozen link looks like from both ends. Bytes, ends
    /// of file and resets wait in the kernel's buffers until `resume()`.
    public func stall() {
        onLoop { $0.setStalled(true) }
    }

    /// Stops forwarding what the target sends on every current connection, while the
    /// clients' bytes still reach it: a request that leaves and an answer that never comes
    /// back. Usually followed by `cut()`; new connections are not held.
    public func holdReplies() {
        onLoop { $0.holdReplies() }
    }

    /// Forwards again whatever waited during the stall, then live traffic.
    public func resume() {
        onLoop { $0.setStalled(false) }
    }

    /// While true, new connections are refused (connect gets ECONNREFUSED, as from a host
    /// whose port is closed); current ones go on. The port stays ours all along.
    public func setRefuseNew(_ refuse: Bool) throws {
        let failure = ErrorBox()
        onLoop { core in
            do { try core.setRefusing(refuse) } catch { failure.error = error }
        }
        if let error = failure.error { throw error }
    }

    public var refusesNew: Bool {
        let answer = ErrorBox()
        onLoop { answer.flag = $0.isRefusing }
        return answer.flag
    }

    /// Closes the listener and every connection (with resets) and ends the thread. Safe to
    /// call twice; the controls do nothing afterwards.
    public func stop() {
        guard stateLock.withLock({ () -> Bool in
            defer { stopped = true }
            return !stopped
        }) else { return }
        let done = DispatchSemaphore(value: 0)
        reactor.execute { [core] in
            core.shutdown()
            done.signal()
        }
        done.wait()
        reactor.stop()
        loopEnded.wait()
    }

    // MARK: Plumbing

    /// Runs `body` on the loop thread and waits for it.
    private func onLoop(_ body: @escaping @Sendable (TCPProxyCore) -> Void) {
        guard !stateLock.withLock({ stopped }) else { return }
        let done = DispatchSemaphore(value: 0)
        reactor.execute { [core] in
            body(core)
            done.signal()
        }
        done.wait()
    }

    /// Written on the loop thread, read by the test's.
    private final class Counters: @unchecked Sendable {
        private let lock = Lock()
        private var value = Statistics()  // guarded by lock
        var snapshot: Statistics { lock.withLock { value } }
        func update(_ change: (inout Statistics) -> Void) { lock.withLock { change(&value) } }
    }

    private final class ErrorBox: @unchecked Sendable {
        var error: Error?
        var flag = false
    }

    static func loopbackAddress(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A TCP socket bound to 127.0.0.1:`port` with SO_REUSEPORT, so the listener and the
    /// placeholder that holds the port while refusing can share it. Listening if `listen`.
    static func bind(port: UInt16, listen: Bool) throws -> Int32 {
        let fd = socket(AF_INET, tether_sock_stream() | tether_sock_cloexec(), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopbackAddress(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let error = SystemError.last("bind 127.0.0.1:\(port)")
            close(fd)
            throw error
        }
        if listen {
            guard Glibc.listen(fd, 128) == 0 else {
                let error = SystemError.last("listen 127.0.0.1:\(port)")
                close(fd)
                throw error
            }
            Descriptors.setNonBlocking(fd)
        }
        return fd
    }

    static func listen(port: UInt16) throws -> Int32 { try bind(port: port, listen: true) }

    private static func boundPort(_ fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else {
            let error = SystemError.last("getsockname")
            close(fd)
            throw error
        }
        return UInt16(bigEndian: address.sin_port)
    }
}

/// The proxy's state on its loop thread: the listener (or the placeholder holding the
/// port while refusing) and the open links.
final class TCPProxyCore: @unchecked Sendable {
    // @unchecked: confined to the loop thread; Sendable only so `execute` can carry it there.
    private let reactor: Reactor
    private let port: UInt16
    private let targetPort: UInt16
    private var listener: Int32
    private var listenerRegistration: Registration?
    /// Bound but not listening: keeps the port ours while a SYN to it gets an RST.
    private var placeholder: Int32 = -1
    private var links: [ObjectIdentifier: TCPProxyLink] = [:]
    private var stalled = false
    private let delay: Double
    var count: (_ change: (inout TCPProxy.Statistics) -> Void) -> Void = { _ in }

    init(reactor: Reactor, listener: Int32, port: UInt16, targetPort: UInt16, delay: Double) {
        self.reactor = reactor
        self.delay = delay
        self.listener = listener
        self.port = port
        self.targetPort = targetPort
    }

    var isRefusing: Bool { placeholder >= 0 }

    func start() { armListener() }

    func setStalled(_ stalled: Bool) {
        self.stalled = stalled
        for link in Array(links.values) { link.setStalled(stalled) }
    }

    func holdReplies() {
        for link in Array(links.values) { link.holdReplies() }
    }

    func cutAll() {
        let doomed = Array(links.values)
        count { $0.cut += doomed.count }
        for link in doomed { link.reset() }
    }

    func setRefusing(_ refuse: Bool) throws {
        guard refuse != isRefusing else { return }
        if refuse {
            // Take the placeholder first so the port is never free for someone else.
            placeholder = try TCPProxy.bind(port: port, listen: false)
            if let listenerRegistration { reactor.unregister(listenerRegistration) }
            listenerRegistration = nil
            close(listener)  // connections waiting in its backlog get an RST too
            listener = -1
        } else {
            listener = try TCPProxy.listen(port: port)
            close(placeholder)
            placeholder = -1
            armListener()
        }
    }

    func shutdown() {
        cutAll()
        if let listenerRegistration { reactor.unregister(listenerRegistration) }
        listenerRegistration = nil
        if listener >= 0 { close(listener) }
        if placeholder >= 0 { close(placeholder) }
        listener = -1
        placeholder = -1
    }

    private func armListener() {
        listenerRegistration = reactor.register(fd: listener, interest: .readable) { [unowned self] _ in
            self.acceptPending()
        }
    }

    private func acceptPending() {
        while listener >= 0 {
            let client = tether_accept4(listener, tether_sock_cloexec())
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // EAGAIN: all taken; anything else: try again on the next wakeup
            }
            do {
                let link = try TCPProxyLink(
                    reactor: reactor, client: client, targetPort: targetPort, stalled: stalled, delay: delay,
                    count: { [unowned self] toTarget, fromTarget in
                        self.count {
                            $0.bytesToTarget += UInt64(toTarget)
                            $0.bytesFromTarget += UInt64(fromTarget)
                        }
                    },
                    onClosed: { [unowned self] link in
                        if self.links.removeValue(forKey: ObjectIdentifier(link)) != nil {
                            self.count { $0.open -= 1 }
                        }
                    })
                links[ObjectIdentifier(link)] = link
                count {
                    $0.accepted += 1
                    $0.open += 1
                }
            } catch {
                // No socket to the target: the client learns at once, by a reset.
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                _ = setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                close(client)
            }
        }
    }
}
