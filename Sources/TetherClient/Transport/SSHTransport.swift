import TetherIO
import TetherSSH

/// The default transport: libssh2 in-process (TetherSSH), driven by the client's own
/// event loop, reading ~/.ssh/config (or $TETHER_SSH_CONFIG / -F) and known_hosts.
final class SSHTransport: ByteTransport {
    private let connection: SSHConnection
    private let destination: String
    private var closeHandler: ((TetherClientError?) -> Void)?

    var onDrained: (() -> Void)?
    var pendingWriteBytes: Int { connection.pendingWriteBytes }
    var liveness: LivenessWatch.Settings? { connection.target.liveness }

    private init(connection: SSHConnection, destination: String) {
        self.connection = connection
        self.destination = destination
    }

    /// `destination` through the ssh config with the options as overrides; a bad config
    /// is a connection-level error naming the host, like ssh's own.
    static func resolveTarget(_ destination: String, options: ConnectionOptions) throws -> SSHTarget {
        let overrides = SSHOverrides(
            port: options.port, user: options.user, identityFiles: options.identityFiles,
            configFile: options.effectiveConfigFile, subsystem: options.subsystem,
            connectTimeout: options.connectTimeout,
            strictHostKeyChecking: options.strictHostKeyChecking.flatMap { HostKeyPolicy(rawValue: $0.rawValue) })
        do {
            var target = try SSHConfig.resolve(destination, overrides: overrides)
            target.gatewaySocket = options.gatewaySocket
            return target
        } catch let error as SSHError {
            throw TetherClientError(.connection, host: destination, error.message)
        } catch {
            throw TetherClientError(.connection, host: destination, "\(error)")
        }
    }

    static func make(reactor: Reactor, destination: String, options: ConnectionOptions) throws -> ByteTransport {
        let target = try resolveTarget(destination, options: options)
        return SSHTransport(connection: SSHConnection(reactor: reactor, target: target), destination: destination)
    }

    func start(onReady: @escaping () -> Void, onData: @escaping (UnsafeRawBufferPointer) -> Void,
               onClose: @escaping (TetherClientError?) -> Void) {
        closeHandler = onClose
        connection.onDrained = { [weak self] in self?.onDrained?() }
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
