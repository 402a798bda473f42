import CTetherPosix
import Glibc
import TetherProtocol

/// A whole frame a relay passes on without reading it: its bytes stay in the kernel and
/// move from the source socket into the destination pipe by splice(2) — pages handed
/// over, not copied out to us and back in.
///
/// The source `FrameConnection` found the frame's header at the head of its stream (a
/// peek, nothing read) and every byte of the frame already in its receive queue, so the
/// splice can't stop halfway for want of input: only for room in the destination pipe,
/// which the destination waits for like any write. Until `finished`, the source reads
/// nothing (the frame is the next thing in its stream) and keeps its descriptor open.
public final class SplicedFrame {
    public let type: FrameType
    public let channel: UInt32
    /// The frame's length on the wire: length field, header and payload.
    public let count: Int
    /// Bytes not yet moved.
    public internal(set) var remaining: Int
    let source: Int32
    /// Called once, by the destination: with true when every byte is out, false when the
    /// destination closed first (`remaining` bytes, possibly a frame's tail, stay unread).
    var finished: (Bool) -> Void

    init(type: FrameType, channel: UInt32, count: Int, source: Int32, finished: @escaping (Bool) -> Void) {
        self.type = type
        self.channel = channel
        self.count = count
        self.remaining = count
        self.source = source
        self.finished = finished
    }

    /// Some bytes went out already.
    var isStarted: Bool { remaining < count }

    /// Frames whose payload is at least this long are spliced; shorter ones cost more in
    /// system calls (a peek, FIONREAD, the splice) than their copy.
    public static let threshold = 16 * 1024

    func finish(complete: Bool) {
        let done = finished
        finished = { _ in }
        done(complete)
    }

    /// One splice(2) toward `destination`: bytes moved, or -1 with errno.
    func move(to destination: Int32) -> Int {
        tether_splice(source, destination, remaining)
    }

    /// The fallback where the kernel can't splice these two descriptors (EINVAL): the
    /// frame's bytes, read the ordinary way. They are all in the source's queue already.
    func readRemaining() -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: remaining)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(source, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            filled += n
        }
        remaining = 0
        return bytes
    }
}

/// True when `fd` is a pipe (or FIFO): splice(2) needs one at either end.
public func isPipe(_ fd: Int32) -> Bool {
    var status = stat()
    return fstat(fd, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO
}
