import CLibSSH2
import TetherIO

/// One SSH connection with one session channel running the subsystem. Confined to the
/// Reactor's thread: create, call and receive callbacks only there. Non-blocking libssh2,
/// driven by the shared Reactor (many connections on one loop, no thread per host).
public final class SSHConnection {
    public let reactor: Reactor
    public let target: SSHTarget

    /// Asked for the passphrase of an encrypted identity file; /dev/tty by default.
    public var passphraseProvider: PassphraseProvider = TTYPassphraseProvider()
    /// One-line notes for the user that are not errors (a skipped RSA key, a host key added
    /// to known_hosts). Defaults to standard error with a "tether: " prefix.
    public var onNotice: (String) -> Void = { SSHNotice.printToStandardError($0) }
    /// Called whenever queued output has been fully handed to the channel (backpressure).
    public var onDrained: () -> Void = {}

    public init(reactor: Reactor, target: SSHTarget) {
        self.reactor = reactor
        self.target = target
    }

    /// Connect, verify the host key, authenticate, open a session channel and start the
    /// subsystem; then onReady. Bytes from the subsystem's stdout arrive via onData;
    /// onClose(nil) on clean EOF or after `close()`, onClose(error) on failure — exactly once,
    /// and for a failed setup within the connect timeout.
    public func start(onReady: @escaping () -> Void, onData: @escaping ([UInt8]) -> Void,
                      onClose: @escaping (SSHError?) -> Void) {
        let error = SSHError(.libssh2, host: target.displayName, "SSH transport not implemented yet")
        reactor.schedule(after: 0) { onClose(error) }
    }

    /// Queued; flushed as the channel window allows.
    public func write(_ bytes: [UInt8]) {}
    public var pendingWriteBytes: Int { 0 }
    public func pauseReading() {}
    public func resumeReading() {}
    public func sendEOF() {}
    /// Orderly: channel close, session disconnect, socket close.
    public func close() {}
    public private(set) var timings = SSHTimings()
}
