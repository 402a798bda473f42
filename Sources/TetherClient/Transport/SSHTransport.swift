import TetherIO
import TetherSSH

/// The default transport: libssh2 in-process (TetherSSH), driven by the client's own
/// event loop, reading ~/.ssh/config (or $TETHER_SSH_CONFIG / -F) and known_hosts.
final class SSHTransport: ByteTransport {
    private let connection: SSHConnection
    private let destination: String
    private var closeHandler: ((TetherClientError?) -> Void)?

    var onDrained: (() -> Void)?
    var readsInto: ((_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int)?
    var pendingWriteBytes: Int { connection.pendingWriteBytes }
    var liveness: LivenessWatch.Settings? { connection.target.liveness }

    private init(connection: SSHConnection, destination: String) {
        self.connection = connection
        self.destination = destination
    }

    static func make(reactor: Reactor, destination: String, target: SSHTarget,
                     credentials: ConnectionCredentials = ConnectionCredentials()) -> ByteTransport {
        let connection = SSHConnection(reactor: reactor, target: target)
        credentials.apply(to: connection)
        return SSHTransport(connection: connection, destination: destination)
    }

    func start(onReady: @escaping () -> Void, onData: @escaping (UnsafeRawBufferPointer) -> Void,
               onClose: @escaping (TetherClientError?) -> Void) {
        closeHandler = onClose
        connection.onDrained = { [weak self] in self?.onDrained?() }
        connection.readsInto = readsInto
        let destination = self.destination
        connection.start(
            onReady: onReady,
            onBytes: onData,
            onClose: { [weak self] error in
                guard let self, let handler = self.closeHandler else { return }
                self.closeHandler = nil
                handler(error.map { TetherClientError(.connection, host: destination, $0.message) })
            })
    }

    func write(_ bytes: [UInt8]) { connection.write(bytes) }
    func pauseReading() { connection.pauseReading() }
    func resumeReading() { connection.resumeReading() }
    func sendEOF() { connection.sendEOF() }

    func close() {
        // Our caller already knows why it closes; SSHConnection would report a clean close.
        closeHandler = nil
        connection.close()
    }
}
