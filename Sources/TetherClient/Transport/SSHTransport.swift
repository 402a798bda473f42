import TetherIO

/// libssh2 transport (TetherSSH). Until TetherSSH lands this falls back to OpenSSH.
enum SSHTransport {
    static func make(reactor: Reactor, destination: String, options: ConnectionOptions) throws -> ByteTransport {
        OpenSSHTransport(reactor: reactor, destination: destination, options: options)
    }
}
