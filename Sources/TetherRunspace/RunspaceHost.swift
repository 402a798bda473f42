import Glibc
import TetherIO
import TetherProtocol

/// How the registry asked this runspace host to run.
public struct RunspaceOptions: Sendable {
    public var instanceID: String
    public var paths: HostPaths
    public var name: String
    public var configuration: String
    public var outputBuffering: OutputBuffering
    public var bufferLimit: Int
    /// The registry waits for "ok\n" or "error: …\n" on this descriptor.
    public var readyFD: Int32?

    public static let defaultBufferLimit = 16 << 20

    public init(instanceID: String, paths: HostPaths, name: String, configuration: String = "bash",
                outputBuffering: OutputBuffering = .block, bufferLimit: Int = RunspaceOptions.defaultBufferLimit,
                readyFD: Int32? = nil) {
        self.instanceID = instanceID
        self.paths = paths
        self.name = name
        self.configuration = configuration
        self.outputBuffering = outputBuffering
        self.bufferLimit = bufferLimit
        self.readyFD = readyFD
    }
}

public enum RunspaceConfigurations {
    public static let known = ["bash"]
}

/// The process that owns one session's interpreter. (Stub until the runspace lands.)
public enum RunspaceHost {
    public static func run(_ options: RunspaceOptions) -> Never {
        if let fd = options.readyFD {
            let line = Array("error: runspace host not implemented yet\n".utf8)
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        exit(1)
    }
}
