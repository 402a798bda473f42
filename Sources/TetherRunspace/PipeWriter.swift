import Glibc
import TetherIO

/// Writes bytes to a non-blocking pipe or FIFO in order, queueing what the kernel won't
/// take yet and finishing when the descriptor becomes writable again — never blocking the
/// loop. Used for bash's stdin (driver lines) and for a command's stdin FIFO.
final class PipeWriter {
    let name: String
    private let reactor: Reactor
    private(set) var fd: Int32
    private var queue: [[UInt8]] = []
    private var headOffset = 0
    private var registration: Registration?
    private var closeWhenFlushed = false

    /// Bytes accepted but not yet written.
    private(set) var pendingBytes = 0
    /// The queue emptied (after having been non-empty).
    var onDrained: () -> Void = {}
    /// A write failed (EPIPE: the reader is gone). The writer is closed and drops input.
    var onError: (SystemError) -> Void = { _ in }

    var isClosed: Bool { fd < 0 }

    /// Takes ownership of `fd` and makes it non-blocking.
    init(reactor: Reactor, fd: Int32, name: String) {
        self.reactor = reactor
        self.fd = fd
        self.name = name
        setNonBlocking(fd)
    }

    func write(_ bytes: [UInt8]) {
        guard !isClosed, !closeWhenFlushed, !bytes.isEmpty else { return }
        queue.append(bytes)
        pendingBytes += bytes.count
        if registration == nil { flush() }
    }

    /// Closes once everything queued is written (for a FIFO: the reader then sees EOF).
    func finish() {
        guard !isClosed else { return }
        closeWhenFlushed = true
        if pendingBytes == 0 { close() }
    }

    /// Closes now, dropping whatever is queued.
    func close() {
        guard !isClosed else { return }
        if let registration { reactor.unregister(registration) }
        registration = nil
        Glibc.close(fd)
        fd = -1
        queue = []
        headOffset = 0
        pendingBytes = 0
    }

    private func flush() {
        while let chunk = queue.first {
            let n = chunk.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + headOffset, chunk.count - headOffset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    waitForWritable()
                    return
                }
                let error = SystemError.last("write to \(name)")
                close()
                onError(error)
                return
            }
            headOffset += n
            pendingBytes -= n
            if headOffset == chunk.count {
                queue.removeFirst()
                headOffset = 0
            }
        }
        if let registration { reactor.unregister(registration) }
        registration = nil
        if closeWhenFlushed {
            close()
        } else {
            onDrained()
        }
    }

    private func waitForWritable() {
        guard registration == nil else { return }
        registration = reactor.register(fd: fd, interest: .writable) { [weak self] _ in
            self?.flush()
        }
    }
}
