import Glibc
import TetherClient
import TetherIO

/// Copies the local stdin to several remote commands (fan-out with piped input). One
/// reader thread for the local descriptor — a terminal or pipe cannot be shared by
/// several pollers — feeding one stream per target.
enum StdinBroadcaster {
    static func streams(count: Int, fd: Int32 = 0) -> [AsyncStream<[UInt8]>] {
        var continuations: [AsyncStream<[UInt8]>.Continuation] = []
        let streams = (0..<count).map { _ in
            AsyncStream<[UInt8]> { continuations.append($0) }
        }
        let sinks = continuations
        do {
            try BackgroundThread.start {
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    let chunk = Array(buffer[0..<n])
                    for sink in sinks { sink.yield(chunk) }
                }
                for sink in sinks { sink.finish() }
            }
        } catch {
            // No thread, no stdin: every target reads end of file rather than hang.
            for sink in sinks { sink.finish() }
        }
        return streams
    }
}
