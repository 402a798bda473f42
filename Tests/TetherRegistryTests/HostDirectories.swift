import Glibc
import CTetherPosix
import TetherIO
import XCTest

/// A private Tether host for one test: its own runtime and state directories (so its
/// registry and runspaces are its own), and the clean-up that ends every process the test
/// caused — found by the unique directory on their command lines, killed by pid.
final class TestHost {
    let root: String
    let paths: HostPaths
    /// The `tether-subsystem` this test's subsystems run (a test may point it at a copy).
    var binary = TestHost.binary
    /// Extra environment for every subsystem this test starts (e.g. TETHER_MIN_IDLE_TIMEOUT).
    var environment: [String: String] = [:]

    init() throws {
        var template = Array("/tmp/trt-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError.last("mkdtemp")
        }
        root = String(cString: made)
        paths = HostPaths(runtimeDirectory: root + "/run", stateDirectory: root + "/state")
    }

    static var binary: String {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        return packageRoot + "/.build/debug/tether-subsystem"
    }

    /// Starts `tether-subsystem` (the stdio role) for this host and, unless told not to,
    /// exchanges hellos.
    func subsystem(clientID: String = "client-a-0000-0000", clientHost: String = "laptop-a",
                   hello: Bool = true) throws -> StdioSubsystem {
        let client = try StdioSubsystem(binary: binary,
                                        arguments: ["--runtime-dir", paths.runtimeDirectory,
                                                    "--state-dir", paths.stateDirectory],
                                        environment: environment, clientID: clientID, clientHost: clientHost)
        if hello { try client.hello() }
        return client
    }

    // MARK: Processes

    /// Pids of live processes whose command line mentions this host's directory.
    func processes(role: String? = nil) -> [pid_t] {
        var result: [pid_t] = []
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), pid != getpid() else { continue }
            guard let bytes = readWholeFile("/proc/\(pid)/cmdline"), !bytes.isEmpty else { continue }
            let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            guard arguments.contains(where: { $0.contains(root) }) else { continue }
            if isZombie(pid) { continue }
            if let role, !arguments.dropFirst().contains(role) { continue }
            result.append(pid)
        }
        return result.sorted()
    }

    func registryPIDs() -> [pid_t] { processes(role: "registry") }
    func runspacePIDs() -> [pid_t] { processes(role: "runspace") }

    /// The pid written in registry.pid.
    func registryPIDFromFile() -> pid_t? {
        guard let bytes = readWholeFile(paths.registryPIDFile) else { return nil }
        return pid_t(String(decoding: bytes, as: UTF8.self).filter(\.isNumber))
    }

    /// kill -9 (or `signal`) and wait until the process is gone — on a pidfd, which turns
    /// readable when the process has exited (its descriptors closed, reaped or not), so
    /// nothing sleeps. Its command line vanishes earlier, while its sockets are still open.
    func killAndWait(_ pid: pid_t, signal: Int32 = SIGKILL, timeout: Double = 10,
                     file: StaticString = #filePath, line: UInt = #line) {
        let fd = tether_pidfd_open(pid)
        kill(pid, signal)
        guard fd >= 0 else { return }  // already gone
        defer { close(fd) }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&entry, 1, Int32(timeout * 1000)) <= 0 {
            XCTFail("pid \(pid) still alive \(timeout)s after signal \(signal)", file: file, line: line)
        }
    }

    private func isZombie(_ pid: pid_t) -> Bool {
        guard let fields = statFields(pid) else { return true }
        return fields.first == "Z"
    }

    /// The fields of /proc/PID/stat after the command name: state, ppid, pgrp, …
    private func statFields(_ pid: pid_t) -> [Substring]? {
        guard let bytes = readWholeFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// Every live process whose parent chain leads to one of `roots`.
    private func descendants(of roots: [pid_t]) -> [pid_t] {
        var parents: [pid_t: pid_t] = [:]
        if let directory = opendir("/proc") {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if let pid = pid_t(name), let fields = statFields(pid), fields.count > 1, let ppid = pid_t(fields[1]) {
                    parents[pid] = ppid
                }
            }
            closedir(directory)
        }
        var found = Set(roots)
        var changed = true
        while changed {
            changed = false
            for (pid, ppid) in parents where found.contains(ppid) && !found.contains(pid) {
                found.insert(pid)
                changed = true
            }
        }
        return Array(found.subtracting(roots))
    }

    /// Ends everything this test started (registry, runspaces and their bash children) and
    /// removes the directories.
    func tearDown() {
        for _ in 0..<3 {
            let mine = processes()
            if mine.isEmpty { break }
            for pid in mine + descendants(of: mine) { killAndWait(pid) }
        }
        _ = try? FileManager.default.removeItem(atPath: root)
    }

    func log() -> String {
        String(decoding: readWholeFile(paths.logFile) ?? [], as: UTF8.self)
    }
}

/// Waits for `condition` by re-checking it when something may have changed: these are
/// waits on other processes (which the test can't get an fd for), bounded and short.
func waitUntil(timeout: Double, _ what: String, failing: Bool = true,
               file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool) {
    let deadline = Reactor.now() + UInt64(timeout * 1e9)
    var pause: UInt32 = 1_000
    while !condition() {
        if Reactor.now() >= deadline {
            if failing { XCTFail("timed out after \(timeout)s waiting for \(what)", file: file, line: line) }
            return
        }
        usleep(pause)
        pause = min(pause * 2, 50_000)
    }
}

func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return result }
        result.append(contentsOf: buffer[0..<n])
    }
}
