import TetherIO

/// A bidirectional byte stream to a host's `tether` subsystem. Confined to the loop.
///
/// Two implementations: `SSHTransport` (libssh2, in-process; the default) and
/// `OpenSSHTransport` (the system `ssh` binary over pipes; `TETHER_TRANSPORT=openssh`).
/// `HostConnection` frames on top and does not care which.
protocol ByteTransport: AnyObject {
    /// Begins connecting. `onReady` once bytes may flow, `onData` per chunk read — lent in
    /// place, valid only during the call (the reader copies it into its frame decoder:
    /// one copy of everything received) —, `onClose` once at the end (nil: the host
    /// closed cleanly, or `close()` was called).
    func start(onReady: @escaping () -> Void,
               onData: @escaping (UnsafeRawBufferPointer) -> Void,
               onClose: @escaping (TetherClientError?) -> Void)
    /// Queues bytes; never blocks.
    func write(_ bytes: [UInt8])
    /// Bytes queued but not yet handed to the kernel / the SSH channel.
    var pendingWriteBytes: Int { get }
    /// Called (on the loop) whenever queued output has drained below the low watermark.
    var onDrained: (() -> Void)? { get set }
    func pauseReading()
    func resumeReading()
    /// Sends end-of-file after everything queued; the host then closes its side.
    func sendEOF()
    /// Tears down now; queued bytes are dropped. `onClose` is not called after this.
    func close()
    /// How the connection checks that the host is still there (nil: not this end's job —
    /// the keeper watches its own links).
    var liveness: LivenessWatch.Settings? { get }
}
