import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// What crashed processes leave behind is cleaned up, and a directory someone else
/// squats on is refused with the way out named.
final class LeftoverTests: CLITestCase {
    /// A Unix socket file nobody listens on: what a keeper killed by a signal leaves.
    func makeDeadSocket(_ path: String) throws {
        let fd = try UnixSocket.listen(path: path)
        close(fd)
    }

    func testAStartingKeeperRemovesWhatCrashedKeepersLeft() throws {
        let runtime = workDirectory + "/xdg"
        XCTAssertEqual(mkdir(runtime, 0o700), 0)
        let directory = runtime + "/tether"
        try SecureDirectory.prepare(directory)
        // A crashed keeper: socket (nobody listening), lock (nobody holding it), log.
        let dead = directory + "/keeper-00000000000000de"
        try makeDeadSocket(dead + ".sock")
        try writeFile(dead + ".lock", "")
        try writeFile(dead + ".log", "crashed\n")
        // A log and lock without a socket: also dead.
        try writeFile(directory + "/keeper-00000000000000df.log", "older crash\n")
        // A keeper that lives (listening), and one being started (its lock held): kept.
        let live = directory + "/keeper-00000000000000a1"
        let listener = try UnixSocket.listen(path: live + ".sock")
        defer { close(listener) }
        try writeFile(live + ".log", "alive\n")
        let starting = directory + "/keeper-00000000000000b2"
        try writeFile(starting + ".log", "starting\n")
        let startingLock = open(starting + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        XCTAssertEqual(flock(startingLock, LOCK_EX), 0)
        defer { close(startingLock) }

        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_") && !$0.hasPrefix("XDG_RUNTIME_DIR=")
        }
        environment += ["TETHER_HOME=\(tetherHome)", "TETHER_SSH_CONFIG=\(sshConfigPath)", "XDG_RUNTIME_DIR=\(runtime)"]
        let result = try Processes.run(tetherPath, ["new", "alpha", "--name", "k"], environment: environment)
        XCTAssertEqual(result.status, .exited(0), result.stderrText)

        let files = Set(try FileManager.default.contentsOfDirectory(atPath: directory))
        for gone in ["keeper-00000000000000de.sock", "keeper-00000000000000de.lock", "keeper-00000000000000de.log",
                     "keeper-00000000000000df.log", "keeper-00000000000000df.lock"] {
            XCTAssertFalse(files.contains(gone), "\(gone) left behind: \(files.sorted())")
        }
        for kept in ["keeper-00000000000000a1.sock", "keeper-00000000000000a1.log",
                     "keeper-00000000000000b2.lock", "keeper-00000000000000b2.log"] {
            XCTAssertTrue(files.contains(kept), "\(kept) of a live keeper was removed: \(files.sorted())")
        }
        // The new keeper itself is there and serves.
        XCTAssertEqual(files.filter { $0.hasSuffix(".sock") }.count, 2, files.sorted().description)
        _ = try? Processes.run(tetherPath, ["keeper", "--stop"], environment: environment)
    }

    func testARuntimeDirectorySquattedByAnotherUserNamesTheWayOut() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to make a directory owned by another user") }
        // Someone else made the host's runtime directory before us.
        _ = mkdir(alpha.runtimeDirectory, 0o700)
        XCTAssertEqual(chown(alpha.runtimeDirectory, 65534, 65534), 0)
        defer { _ = chown(alpha.runtimeDirectory, 0, 0) }
        let result = try tether(["new", "alpha", "--name", "squatted"])
        XCTAssertNotEqual(result.status, .exited(0))
        XCTAssertTrue(result.stderrText.contains("owned by uid 65534"), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("TETHER_RUNTIME_DIR"), result.stderrText)
    }
}
