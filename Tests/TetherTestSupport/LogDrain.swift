import Foundation
import Glibc

/// Copies everything a process writes to a pipe into a log file, on a thread of its own,
/// so a chatty child (sshd at LogLevel VERBOSE, forking per connection) never blocks on a
/// full pipe. The thread ends at end of file, when the last writer is gone.
enum LogDrain {
    static func start(pipe: Int32, logFile: Int32) {
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(pipe, $0.baseAddress, 65536) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                _ = buffer.withUnsafeBytes { write(logFile, $0.baseAddress, n) }
            }
            close(pipe)
            close(logFile)
        }
    }
}
