import Glibc
import CTetherPosix

/// Tells its owner, on the Reactor, when something leaves a watched directory (an entry
/// deleted or renamed away) or the directory itself goes — what a /tmp cleaner
/// (systemd-tmpfiles aging, `rm -rf`) does to a runtime directory under a running process.
/// One inotify descriptor per process, however many directories: the per-user limit on
/// inotify instances is small (128 by default), so this must not be one per session.
///
/// A watch ends with its directory; `watch` again once the owner has made it anew (an
/// existing watch is kept: inotify returns the same descriptor for the same inode).
public final class DirectoryWatch {
    /// What an event said, for an owner that checks only what could have changed.
    public enum Change: Equatable {
        /// `name` left the directory at `directory`.
        case entryRemoved(directory: String, name: String)
        /// The directory itself went, or events were lost: check everything.
        case directoryGone(String)
    }

    private let reactor: Reactor
    private let fd: Int32
    private var registration: Registration?
    private var directories: [Int32: String] = [:]
    /// Called once per wakeup with every change read in it (coalesced: `rm -rf` of a
    /// directory of a thousand entries costs a few calls, not a thousand).
    public var onChange: ([Change]) -> Void = { _ in }

    public init(reactor: Reactor) throws {
        self.reactor = reactor
        fd = tether_inotify_open()
        guard fd >= 0 else { throw SystemError.last("inotify_init1") }
        registration = reactor.register(fd: fd, interest: .readable) { [weak self] _ in self?.drain() }
    }

    deinit { close() }

    /// Starts (or keeps) watching `path`, which must be a directory.
    public func watch(_ path: String) throws {
        let wd = tether_inotify_watch_removals(fd, path)
        guard wd >= 0 else { throw SystemError.last("inotify_add_watch \(path)") }
        directories[wd] = path
    }

    public func close() {
        if let registration { reactor.unregister(registration) }
        registration = nil
        if fd >= 0 { Glibc.close(fd) }
    }

    private func drain() {
        let goneMask = tether_inotify_directory_gone_mask()
        var changes: [Change] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            // struct inotify_event: int wd; u32 mask, cookie, len; char name[len].
            var offset = 0
            while offset + 16 <= n {
                let (wd, mask, length) = buffer.withUnsafeBytes { raw in
                    (raw.loadUnaligned(fromByteOffset: offset, as: Int32.self),
                     raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                     Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let nameBytes = buffer[(offset + 16)..<min(n, offset + 16 + length)]
                let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                offset += 16 + length
                let directory = directories[wd] ?? ""
                if mask & goneMask != 0 {
                    if mask & 0x8000 != 0 { directories[wd] = nil }  // IN_IGNORED: the watch ended
                    changes.append(.directoryGone(directory))
                } else if !name.isEmpty {
                    changes.append(.entryRemoved(directory: directory, name: name))
                }
            }
        }
        if !changes.isEmpty { onChange(changes) }
    }
}
