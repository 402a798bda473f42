import CTetherPosix
import Glibc
import TetherIO

/// Name resolution and the non-blocking TCP connect.
extension SSHConnection {
    func resolve() {
        guard phase == .resolving else { return }
        if let proxy = target.proxyCommand {
            startProxy(proxy)
            return
        }
        let family = AddressResolver.family(target.preferences.addressFamily)
        if let numeric = AddressResolver.numeric(target.hostName, port: target.port, family: family) {
            connect(to: numeric)
            return
        }
        if AddressResolver.numeric(target.hostName, port: target.port) != nil {
            fail(.dnsFailure, "'\(target.hostName)' is not an address of AddressFamily \(target.preferences.addressFamily)")
            return
        }
        let token = WeakConnection(self)
        let reactor = self.reactor
        AddressResolver.resolve(target.hostName, port: target.port, family: family) { result in
            reactor.execute { token.connection?.resolved(result) }
        }
    }

    private func resolved(_ result: Result<[SocketAddress], AddressResolver.Failure>) {
        guard phase == .resolving else { return }  // timed out or closed meanwhile
        switch result {
        case .success(let found):
            connect(to: found)
        case .failure(.notFound(let reason)):
            fail(.dnsFailure, "could not resolve host name '\(target.hostName)': \(reason)")
        case .failure(.temporary(let reason)):
            fail(.dnsFailure, "could not resolve host name '\(target.hostName)' (DNS not answering?): \(reason)")
        }
    }

    private func connect(to found: [SocketAddress]) {
        addresses = found
        enter(.connecting)
        tryNextAddress()
    }

    /// Tries the addresses in order, as ssh does ("localhost" is ::1 then 127.0.0.1).
    private func tryNextAddress() {
        guard !addresses.isEmpty else {
            connectFailed()
            return
        }
        let address = addresses.removeFirst()
        let fd = Glibc.socket(address.family, tether_sock_stream() | tether_sock_cloexec(), 0)
        guard fd >= 0 else {
            connectFailures.append((address.numericHost, errno))
            tryNextAddress()
            return
        }
        setNonBlocking(fd)
        // Without NODELAY every small SSH packet waits for the previous one's ACK.
        _ = tether_tcp_nodelay(fd)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        if let local = target.preferences.bindAddress, !bind(fd, to: local, family: address.family) {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            fail(.unreachable, "cannot bind to BindAddress \(local): \(why)")
            return
        }
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        socket = fd
        currentAddress = address.numericHost
        if rc == 0 {
            connectCompleted()
        } else if errno == EINPROGRESS {
            watchSocket(.writable)
        } else {
            connectFailures.append((address.numericHost, errno))
            dropSocket()
            tryNextAddress()
        }
    }

    /// ssh's BindAddress: the local end of the TCP connection, bound before connecting.
    /// False (errno set) if it can't be: ssh refuses to connect then too.
    private func bind(_ fd: Int32, to local: String, family: Int32) -> Bool {
        guard let address = AddressResolver.numeric(local, port: 0, family: family)?.first else {
            errno = EADDRNOTAVAIL
            return false
        }
        var storage = address.storage
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, address.length) }
        } == 0
    }

    func connectCompleted() {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        if error != 0 {
            connectFailures.append((currentAddress, error))
            dropSocket()
            tryNextAddress()
            return
        }
        shared.quickAckSockets.insert(socket)
        beginHandshake()
    }

    private func dropSocket() {
        if let registration { reactor.unregister(registration) }
        registration = nil
        if socket >= 0 { Glibc.close(socket) }
        socket = -1
    }

    /// One message for all addresses; the most telling errno decides the kind.
    private func connectFailed() {
        let endpoint = "port \(target.port)"
        guard let first = connectFailures.first else {
            fail(.unreachable, "no address to connect to")
            return
        }
        let errnos = connectFailures.map(\.errno)
        let detail = connectFailures.map { "\($0.address): \(String(cString: strerror($0.errno)))" }.joined(separator: ", ")
        if errnos.allSatisfy({ $0 == ECONNREFUSED }) {
            fail(.connectionRefused, "connection refused on \(endpoint) (is sshd running and listening there?)")
        } else if errnos.contains(ETIMEDOUT) {
            fail(.timeout, "connection to \(endpoint) timed out (\(detail))")
        } else if errnos.contains(where: { $0 == ENETUNREACH || $0 == EHOSTUNREACH || $0 == EADDRNOTAVAIL }) {
            fail(.unreachable, "host unreachable on \(endpoint) (\(detail))")
        } else if errnos.contains(ECONNREFUSED) {
            fail(.connectionRefused, "connection refused on \(endpoint) (\(detail))")
        } else {
            fail(.unreachable, "cannot connect to \(endpoint): \(String(cString: strerror(first.errno))) (\(detail))")
        }
    }
}

/// Lets a DNS answer from a worker thread find its connection, if it still exists, back on
/// the Reactor's thread (the only place `connection` is read).
final class WeakConnection: @unchecked Sendable {
    weak var connection: SSHConnection?
    init(_ connection: SSHConnection) { self.connection = connection }
}
