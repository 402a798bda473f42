import TetherIO

/// A bidirectional byte stream to a host's `tether` subsystem. Confined to the loop.
///
/// Two implementations: `SSHTransport` (libssh2, in-process; the default) and
/// `OpenSSHTransport` (the system `ssh` binary over pipes; `TETHER_TRANSPORT=openssh`).
/// `HostConnection` frames on top and does not care which.
protocol ByteTransport: AnyObject {
    /// Begins connecting. `onReady` once bytes may flow, `onData` per chunk read — lent in
    /// place, valid only during the call (the reader copies it into its frame decoder:
    /// one copy of everything received) — unless `readsInto` is set and the transport
    /// can read into the reader's buffer, `onClose` once at the end (nil: the host
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
    /// Set before `start` by a reader that decodes frames: a transport that can (libssh2's
    /// `SSHConnection.readsInto`) reads straight into the buffer the reader lends — the
    /// rest of a big record's own array — and calls this instead of `onData`; the others
    /// ignore it. The closure calls `read` once, handles what landed, and returns what
    /// `read` returned (bytes, or zero / a negative status, passed back unchanged).
    var readsInto: ((_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int)? { get set }
}

extension ByteTransport {
    /// Transports that read into their own buffer (a pipe from `ssh`, the keeper's
    /// socket) lend it through `onData`.
    var readsInto: ((_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int)? {
        get { nil }
        set {}
    }
}
