import Glibc

/// One line of the process table, read from /proc.
public struct ProcessEntry: Sendable, Equatable {
    public let pid: pid_t
    public let parentPID: pid_t
    public let processGroup: pid_t
    public let sessionID: pid_t
    /// The state letter from /proc/PID/stat: R, S, D, Z (zombie), T…
    public let state: Character
    /// argv, split on NULs.
    public let arguments: [String]
    /// Clock ticks after boot when it started: with the pid, names one process for good
    /// (pids are reused).
    public let startTime: UInt64

    public var isZombie: Bool { state == "Z" || state == "X" }
}

/// Finding Tether's processes the way an operator would (`pgrep -f`), but by reading
/// /proc directly so tests depend on nothing but the kernel.
public enum ProcessTable {
    /// Every process visible now.
    public static func snapshot() -> [ProcessEntry] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var result: [ProcessEntry] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), let process = self.entry(pid) else { continue }
            result.append(process)
        }
        return result
    }

    /// The process `pid`, or nil if it no longer exists.
    public static func entry(_ pid: pid_t) -> ProcessEntry? {
        guard let stat = Descriptors.readFile("/proc/\(pid)/stat") else { return nil }
        // "pid (comm) S ppid pgrp session …" — comm may hold spaces and parentheses,
        // so fields are counted from the last ')'.
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count >= 20,
              let state = String(decoding: fields[0], as: UTF8.self).first,
              let ppid = pid_t(String(decoding: fields[1], as: UTF8.self)),
              let pgrp = pid_t(String(decoding: fields[2], as: UTF8.self)),
              let sid = pid_t(String(decoding: fields[3], as: UTF8.self)),
              let started = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        let cmdline = Descriptors.readFile("/proc/\(pid)/cmdline") ?? []
        let arguments = cmdline.split(separator: 0, omittingEmptySubsequences: false)
            .dropLast(cmdline.last == 0 ? 1 : 0)
            .map { String(decoding: $0, as: UTF8.self) }
        return ProcessEntry(pid: pid, parentPID: ppid, processGroup: pgrp, sessionID: sid,
                            state: state, arguments: arguments, startTime: started)
    }

    /// True while `pid` exists and has not exited (a zombie counts as gone).
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let process = entry(pid) else { return false }
        return !process.isZombie
    }

    /// The environment of `pid` (readable for our own user's processes).
    public static func environment(of pid: pid_t) -> [String] {
        guard let bytes = Descriptors.readFile("/proc/\(pid)/environ") else { return [] }
        return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Live processes whose argv or environment mentions `text` (like `pgrep -f`, plus
    /// environment, so a role that got its directory from TETHER_RUNTIME_DIR is found too).
    public static func processes(mentioning text: String, in table: [ProcessEntry]? = nil) -> [ProcessEntry] {
        let me = getpid()
        return (table ?? snapshot()).filter { process in
            guard process.pid != me, !process.isZombie else { return false }
            if process.arguments.contains(where: { $0.contains(text) }) { return true }
            return environment(of: process.pid).contains { $0.contains(text) }
        }
    }

    /// Live children of `pid`.
    public static func children(of pid: pid_t, in table: [ProcessEntry]? = nil) -> [ProcessEntry] {
        (table ?? snapshot()).filter { $0.parentPID == pid && !$0.isZombie }
    }

    /// Every live descendant of `roots` (children, grandchildren…), and every live member
    /// of a session one of them leads — a detached job's orphans stay in its session.
    public static func descendants(of roots: [pid_t], in table: [ProcessEntry]? = nil) -> [ProcessEntry] {
        let table = table ?? snapshot()
        var found: [pid_t: ProcessEntry] = [:]
        var frontier = Set(roots)
        var seen = Set(roots)
        while !frontier.isEmpty {
            var next = Set<pid_t>()
            for process in table where !process.isZombie && !seen.contains(process.pid) {
                if frontier.contains(process.parentPID) || frontier.contains(process.sessionID) {
                    found[process.pid] = process
                    next.insert(process.pid)
                    seen.insert(process.pid)
                }
            }
            frontier = next
        }
        return Array(found.values)
    }
}
