import TetherIO
import TetherProtocol

enum TransportFactory {
    /// The transport the plan chose; libssh2 through the client keeper when `keeper` asks
    /// for it (see `KeeperUse`).
    /// Credentials from the caller need a direct libssh2 connection (their callbacks run
    /// in this process); `TetherClient.connect` has refused the OpenSSH route for them.
    static func make(reactor: Reactor, plan: ConnectionPlan,
                     keeper: KeeperUse = .never, hello: Hello? = nil, home: ClientHome? = nil,
                     credentials: ConnectionCredentials = ConnectionCredentials()) -> ByteTransport {
        switch plan.route {
        case .openssh:
            return OpenSSHTransport(reactor: reactor, destination: plan.destination, options: plan.options,
                                    shareConnection: plan.sharesOpenSSHConnection)
        case .libssh2(let target):
            if !credentials.isEmpty {
                return SSHTransport.make(reactor: reactor, destination: plan.destination, target: target,
                                         credentials: credentials)
            }
            if let executable = keeper.effectiveExecutable, let hello, let home {
                return KeeperTransport.make(reactor: reactor, destination: plan.destination, target: target,
                                            options: plan.options, hello: hello, home: home, executable: executable)
            }
            return SSHTransport.make(reactor: reactor, destination: plan.destination, target: target)
        }
    }
}
