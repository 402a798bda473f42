import Glibc
import TetherIO

/// Cleans up after test processes that died without stopping their fixtures (killed by a
/// timeout, crashed): their sshd, registries and runspaces would otherwise live on. Each
/// fixture directory records its owner (pid and start time); a directory whose owner is
/// gone is swept — its processes killed, the directory removed — by the next fixture.
enum AbandonedFixtures {
    static let directoryPrefix = "/tmp/tfx-"
    static let ownerFileName = "owner"

    nonisolated(unsafe) private static var swept = false

    /// Marks `directory` as belonging to this process.
    static func claim(_ directory: String) throws {
        guard let me = ProcessTable.entry(getpid()) else { return }
        try Descriptors.writeFile("\(directory)/\(ownerFileName)", "\(me.pid) \(me.startTime)\n", mode: 0o600)
    }

    /// Once per test process: sweeps every fixture directory whose owner has exited.
    static func sweepOnce() {
        guard !swept else { return }
        swept = true
        guard let dir = opendir("/tmp") else { return }
        var abandoned: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let path = "/tmp/" + name
            guard path.hasPrefix(directoryPrefix), isAbandoned(path) else { continue }
            abandoned.append(path)
        }
        closedir(dir)
        guard !abandoned.isEmpty else { return }
        let table = ProcessTable.snapshot()
        for path in abandoned {
            let roots = ProcessTable.processes(mentioning: path + "/", in: table).map(\.pid)
            Processes.killAll(roots + ProcessTable.descendants(of: roots, in: table).map(\.pid))
            _ = try? Processes.run("/bin/rm", ["-rf", path])
        }
    }

    /// True when the directory is ours and names an owner that no longer runs. Directories
    /// without an owner file are left alone (one may be being created right now).
    private static func isAbandoned(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_uid == geteuid(),
              let owner = Descriptors.readFile("\(path)/\(ownerFileName)") else { return false }
        let fields = String(decoding: owner, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2, let pid = pid_t(fields[0]), let started = UInt64(fields[1]) else { return false }
        guard let process = ProcessTable.entry(pid) else { return true }
        return process.startTime != started || process.isZombie
    }
}
