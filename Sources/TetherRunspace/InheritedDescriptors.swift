import Glibc
import TetherIO

/// Descriptor hygiene at startup.
enum InheritedDescriptors {
    /// fds 0–2 are /dev/null if they came closed, so no pipe of ours lands on them.
    static func ensureStandardOpen() {
        for fd in Int32(0)...2 where fcntl(fd, F_GETFD) < 0 {
            _ = open("/dev/null", O_RDWR)  // takes the lowest free number: this one
        }
    }

    /// Every inherited descriptor above 2 gets close-on-exec (the ready pipe included).
    static func markInheritedCloseOnExec() {
        guard let directory = opendir("/proc/self/fd") else { return }
        var fds: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name), fd > 2 { fds.append(fd) }
        }
        closedir(directory)
        for fd in fds { setCloseOnExec(fd) }
    }
}
