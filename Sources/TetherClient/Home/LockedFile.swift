#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherIO

/// Read-modify-write of a small JSON file that several `tether` processes share:
/// an exclusive `flock` on a sibling lock file around the whole cycle, and the new
/// content written to a temporary file and renamed over the old one, so a reader never
/// sees half a file and a crash never leaves one.
enum LockedFile {
    static func withLock<T>(_ lockPath: String, _ body: () throws -> T) throws -> T {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw TetherClientError(.localState, "cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw TetherClientError(.localState, "cannot lock \(lockPath): \(String(cString: strerror(errno)))")
        }
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }

    static func read(_ path: String) throws -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw TetherClientError(.localState, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { bytes += chunk[0..<n]; continue }
            if n == 0 { return Data(bytes) }
            if errno == EINTR { continue }
            throw TetherClientError(.localState, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw TetherClientError(.localState, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        var ok = data.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        Glibc.close(fd)
        guard ok, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TetherClientError(.localState, "cannot write \(path): \(reason)")
        }
    }
}
