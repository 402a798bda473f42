#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherIO

/// Reads and writes `sessions.json` crash-safely: a new version is written to a temporary
/// file, fsynced, and renamed over the old one (then the directory is fsynced), so a crash
/// at any instant leaves either the old table or the new one, never half of one.
struct SessionTableStore {
    let path: String

    enum LoadResult {
        case loaded(SessionTable)
        case missing
        /// The file exists but can't be used; it was moved aside to `movedTo`.
        case unreadable(why: String, movedTo: String?)
    }

    func load() -> LoadResult {
        guard let bytes = readFile(path) else { return .missing }
        do {
            let table = try JSONDecoder().decode(SessionTable.self, from: Data(bytes))
            guard table.formatVersion == 1 else {
                return .unreadable(why: "table format \(table.formatVersion) is newer than this registry understands",
                                   movedTo: moveAside())
            }
            return .loaded(table)
        } catch {
            return .unreadable(why: "\(error)", movedTo: moveAside())
        }
    }

    /// Keeps a damaged table for a person to look at rather than overwriting it.
    private func moveAside() -> String? {
        let aside = "\(path).damaged-\(Int(WallClock.now()))"
        return rename(path, aside) == 0 ? aside : nil
    }

    func save(_ table: SessionTable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = Array(try encoder.encode(table))
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.last("open \(temporary)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let error = SystemError.last("write \(temporary)")
                close(fd)
                throw error
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let error = SystemError.last("fsync \(temporary)")
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SystemError.last("rename \(temporary) to \(path)") }
        syncDirectory(of: path)
    }

    /// Makes the rename itself durable.
    private func syncDirectory(of file: String) {
        let directory = file.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
