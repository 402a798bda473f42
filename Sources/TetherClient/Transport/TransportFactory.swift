import TetherIO

enum TransportFactory {
    /// The transport `TETHER_TRANSPORT` selects (libssh2 unless it says openssh).
    static func make(reactor: Reactor, destination: String, options: ConnectionOptions) throws -> ByteTransport {
        switch TransportKind.fromEnvironment {
        case .openssh:
            return OpenSSHTransport(reactor: reactor, destination: destination, options: options)
        case .libssh2:
            return try SSHTransport.make(reactor: reactor, destination: destination, options: options)
        }
    }
}
