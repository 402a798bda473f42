import TetherIO
import TetherProtocol

enum TransportFactory {
    /// The transport `TETHER_TRANSPORT` selects (libssh2 unless it says openssh); libssh2
    /// through the client keeper when `keeper` asks for it (see `KeeperUse`).
    static func make(reactor: Reactor, destination: String, options: ConnectionOptions,
                     keeper: KeeperUse = .never, hello: Hello? = nil, home: ClientHome? = nil) throws -> ByteTransport {
        switch TransportKind.fromEnvironment {
        case .openssh:
            return OpenSSHTransport(reactor: reactor, destination: destination, options: options)
        case .libssh2:
            if let executable = keeper.effectiveExecutable, let hello, let home {
                return try KeeperTransport.make(reactor: reactor, destination: destination, options: options,
                                                hello: hello, home: home, executable: executable)
            }
            return try SSHTransport.make(reactor: reactor, destination: destination, options: options)
        }
    }
}
