import Glibc
import TetherIO

/// Bytes waiting for a non-blocking descriptor to accept them. Loop-confined.
struct WriteQueue {
    private var chunks: [[UInt8]] = []
    private var head = 0
    private var headOffset = 0
    private(set) var pendingBytes = 0

    var isEmpty: Bool { pendingBytes == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        chunks.append(bytes)
        pendingBytes += bytes.count
    }

    enum FlushResult { case flushed, wouldBlock, failed(SystemError) }

    /// Writes as much as `fd` takes now.
    mutating func flush(to fd: Int32, name: String) -> FlushResult {
        while head < chunks.count {
            let chunk = chunks[head]
            let n = chunk.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + headOffset, chunk.count - headOffset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    compact()
                    return .wouldBlock
                }
                return .failed(SystemError.last("write to \(name)"))
            }
            headOffset += n
            pendingBytes -= n
            if headOffset == chunk.count {
                chunks[head] = []
                head += 1
                headOffset = 0
            }
        }
        chunks.removeAll(keepingCapacity: true)
        head = 0
        return .flushed
    }

    mutating func removeAll() {
        chunks.removeAll()
        head = 0
        headOffset = 0
        pendingBytes = 0
    }

    private mutating func compact() {
        if head > 64 {
            chunks.removeFirst(head)
            head = 0
        }
    }
}
