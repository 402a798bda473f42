import TetherIO
import TetherProtocol

/// How the registry asked this runspace host to run.
public struct RunspaceOptions: Sendable {
    public var instanceID: String
    public var paths: HostPaths
    public var name: String
    /// The session configuration's name (its settings are read from the configuration
    /// directory when the runspace starts, see `RunspaceHost`).
    public var configuration: String
    public var outputBuffering: OutputBuffering
    /// Bytes of unacknowledged output kept at most (see protocol.md, "Buffering").
    public var bufferLimit: Int
    /// The idle timeout the registry applies (seconds), kept to tell a registry that lost
    /// its table (`describe`); nil if not given.
    public var idleTimeout: Double?
    /// Jobs that may run at once (protocol.md, "Jobs").
    public var jobLimit: Int = JobLimits.defaultConcurrent
    /// The registry waits for "ok\n" or "error: …\n" on this descriptor.
    public var readyFD: Int32?

    public static let defaultBufferLimit = 16 << 20

    public init(instanceID: String, paths: HostPaths, name: String, configuration: String = "bash",
                outputBuffering: OutputBuffering = .block, bufferLimit: Int = RunspaceOptions.defaultBufferLimit,
                readyFD: Int32? = nil, idleTimeout: Double? = nil) {
        self.instanceID = instanceID
        self.paths = paths
        self.name = name
        self.configuration = configuration
        self.outputBuffering = outputBuffering
        self.bufferLimit = bufferLimit
        self.readyFD = readyFD
        self.idleTimeout = idleTimeout
    }
}
