import Glibc
import CTetherPosix

/// Unix-domain stream sockets with the owner checks every Tether socket needs.
public enum UnixSocket {
    /// Binds and listens on `path` (removing a stale socket file first), mode 0600.
    public static func listen(path: String, backlog: Int32 = 128) throws -> Int32 {
        let fd = socket(AF_UNIX, tether_sock_stream() | tether_sock_cloexec(), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        var address = try makeAddress(path)
        unlink(path)
        let oldMask = umask(0o177)
        defer { umask(oldMask) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let error = SystemError.last("bind \(path)")
            Glibc.close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SystemError.last("listen \(path)")
            Glibc.close(fd)
            throw error
        }
        setNonBlocking(fd)
        return fd
    }

    /// Connects (blocking; local sockets answer at once or refuse) and checks that the
    /// listener runs as our own user. Returns a blocking descriptor.
    public static func connect(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, tether_sock_stream() | tether_sock_cloexec(), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        var address = try makeAddress(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let error = SystemError.last("connect \(path)")
            Glibc.close(fd)
            throw error
        }
        do {
            try requirePeerIsSelf(fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        enlargeSendBuffer(fd)
        return fd
    }

    /// Accepts one connection if any is pending and checks the peer's uid.
    /// Returns nil when none is pending; throws on a peer of another user (already closed).
    public static func accept(_ listener: Int32) throws -> Int32? {
        let fd = tether_accept4(listener, tether_sock_cloexec())
        if fd < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED { return nil }
            throw SystemError.last("accept")
        }
        do {
            try requirePeerIsSelf(fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        enlargeSendBuffer(fd)
        return fd
    }

    /// How many bytes a local connection may have in flight. The default (~208 KiB) is
    /// less than one 256 KiB output record: a streaming writer would stall mid-record and
    /// both ends would wake several times per record. The kernel charges only bytes
    /// actually queued, so an idle connection costs nothing more.
    public static let sendBufferBytes: Int32 = 2 << 20

    /// Asks for `sendBufferBytes` of send buffer (capped by net.core.wmem_max; best effort).
    public static func enlargeSendBuffer(_ fd: Int32) {
        var size = sendBufferBytes
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The uid and pid of the process at the other end of a Unix socket.
    public static func peerCredentials(_ fd: Int32) throws -> (uid: uid_t, pid: pid_t) {
        var uid: uid_t = 0
        var pid: pid_t = 0
        guard tether_peer_credentials(fd, &uid, &pid) == 0 else {
            throw SystemError.last("getsockopt(SO_PEERCRED)")
        }
        return (uid, pid)
    }

    /// Refuses a peer that is not running as our effective uid.
    public static func requirePeerIsSelf(_ fd: Int32) throws {
        let peer = try peerCredentials(fd)
        guard peer.uid == geteuid() else {
            throw TetherIOError("refusing a Unix socket peer with uid \(peer.uid) (pid \(peer.pid)): only uid \(geteuid()) may connect")
        }
    }

    private static func makeAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw TetherIOError("socket path too long (\(bytes.count) bytes, limit \(capacity - 1)): \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
            raw[bytes.count] = 0
        }
        return address
    }
}

/// A listening Unix socket on the reactor that hands accepted, uid-checked peers to
/// `onAccept` and reports refused peers to `onRefused`.
public final class UnixListener {
    public let path: String
    public private(set) var fd: Int32
    private let reactor: Reactor
    private var registration: Registration?
    private let onAccept: (Int32) -> Void
    private let onRefused: (Error) -> Void
    /// The socket file's identity when we bound it: a path that no longer leads there
    /// was removed (or replaced) under us.
    private var boundFile: (device: UInt, inode: UInt)?

    /// Listens on `path`, or on `inheritedFD` — a socket already listening there, left
    /// open by the image this process re-executed from (a registry's hand-over).
    public init(reactor: Reactor, path: String, inheritedFD: Int32? = nil,
                onAccept: @escaping (Int32) -> Void,
                onRefused: @escaping (Error) -> Void = { _ in }) throws {
        self.reactor = reactor
        self.path = path
        self.onAccept = onAccept
        self.onRefused = onRefused
        if let inheritedFD {
            setNonBlocking(inheritedFD)
            self.fd = inheritedFD
        } else {
            self.fd = try UnixSocket.listen(path: path)
        }
        // An inherited socket is taken to be the one at `path` (the image before us bound
        // it there); if a cleaner removed it meanwhile, `restoreIfGone` binds it again.
        boundFile = UnixListener.identity(of: path)
        register()
    }

    private func register() {
        let fd = self.fd
        let onAccept = self.onAccept, onRefused = self.onRefused
        registration = reactor.register(fd: fd, interest: .readable) { _ in
            while true {
                do {
                    guard let client = try UnixSocket.accept(fd) else { return }
                    onAccept(client)
                } catch let error as SystemError {
                    onRefused(error)
                    return  // accept itself failed (EMFILE…): wait for the next wakeup
                } catch {
                    onRefused(error)
                }
            }
        }
    }

    /// The socket file is still the one we bound (a stat; false once it was removed).
    public var isReachable: Bool {
        guard let boundFile, let now = UnixListener.identity(of: path) else { return false }
        return now == boundFile
    }

    /// Binds the path again if the socket file was removed or replaced under us (a /tmp
    /// cleaner): a new listening socket takes the old one's place on the Reactor.
    /// Connections already accepted are independent of it and go on; nobody could reach
    /// the old one any more. Returns whether it re-bound. The directory must exist.
    @discardableResult
    public func restoreIfGone() throws -> Bool {
        guard registration != nil, !isReachable else { return false }
        let fresh = try UnixSocket.listen(path: path)
        if let registration { reactor.unregister(registration) }
        Glibc.close(fd)
        fd = fresh
        boundFile = UnixListener.identity(of: path)
        register()
        return true
    }

    private static func identity(of path: String) -> (device: UInt, inode: UInt)? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return (UInt(info.st_dev), UInt(info.st_ino))
    }

    /// Stops listening and removes the socket file (only if it is still ours).
    public func close(unlinkPath: Bool = true) {
        let wasOpen = registration != nil
        if let registration { reactor.unregister(registration) }
        registration = nil
        guard wasOpen else { return }
        if unlinkPath && isReachable { unlink(path) }
        Glibc.close(fd)
    }
}
