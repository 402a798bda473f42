import XCTest
import Glibc
import TetherIO
import TetherTestSupport

/// The previous release's binaries, built by scripts/previous-release (scripts/test runs
/// it and passes the directory as TETHER_PREVIOUS_RELEASE_BIN). Without them the tests
/// that need them are skipped — loudly, with the reason, never passed.
enum PreviousRelease {
    static func binary(_ name: String) throws -> String {
        guard let directory = Environment.get("TETHER_PREVIOUS_RELEASE_BIN"), !directory.isEmpty else {
            let why = Environment.get("TETHER_PREVIOUS_RELEASE_SKIP")
                ?? "TETHER_PREVIOUS_RELEASE_BIN is not set (run scripts/test, or: export TETHER_PREVIOUS_RELEASE_BIN=$(scripts/previous-release))"
            print("SKIPPED: the previous release's binaries are not available: \(why)")
            throw XCTSkip("the previous release's binaries are not available: \(why)")
        }
        let path = directory + "/" + name
        guard access(path, X_OK) == 0 else {
            throw TestSupportError("TETHER_PREVIOUS_RELEASE_BIN=\(directory) has no executable \(name)")
        }
        return path
    }
}

extension CLITestCase {
    /// Runs `tether ARGS` with the previous release's client, this test's home and config.
    @discardableResult
    func previousTether(_ arguments: [String], home: String? = nil, timeout: Double = 60) throws -> CommandResult {
        let current = tetherPath
        tetherPath = try PreviousRelease.binary("tether")
        defer { tetherPath = current }
        return try tether(arguments, home: home, timeout: timeout)
    }

    /// The same, requiring exit 0; returns stdout.
    @discardableResult
    func checkPrevious(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try previousTether(arguments)
        XCTAssertEqual(result.status, .exited(0),
                       "previous release's tether \(arguments.joined(separator: " ")): stderr: \(result.stderrText) stdout: \(result.stdoutText)",
                       file: file, line: line)
        return result.stdoutText
    }

    /// The executable a process runs, as /proc names it (" (deleted)" once replaced).
    func executable(of pid: pid_t) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }
}
