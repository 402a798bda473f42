import Glibc
import TetherIO
import TetherTestSupport
import XCTest
@testable import TetherSSH

/// The `ssh -G` cache answers only while nothing the answer depends on has changed.
final class SSHConfigCacheTests: XCTestCase {
    private var directory = ""
    private var cacheDirectory: String { directory + "/cache" }

    override func setUpWithError() throws {
        var template = Array("/tmp/tether-sshg-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError.last("mkdtemp")
        }
        directory = String(cString: made)
        let path = directory
        addTeardownBlock { _ = try? Processes.run("/bin/rm", ["-rf", path]) }
        try FileManagerless.mkdir(directory + "/conf.d")
    }

    /// Writes a file with a modification time in the past (the cache refuses files changed
    /// in the last two seconds: they may change again within the clock's granularity).
    private func write(_ name: String, _ text: String, age: Int = 60) throws {
        let path = directory + "/" + name
        try Descriptors.writeFile(path, text, mode: 0o600)
        backdate(path, age: age)
    }

    private func backdate(_ path: String, age: Int = 60) {
        let then = time(nil) - age
        var times = [timespec(tv_sec: then, tv_nsec: 0), timespec(tv_sec: then, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    private func resolve(_ host: String = "web1") throws -> SSHResolution {
        var overrides = SSHOverrides(configFile: directory + "/config")
        overrides.cacheDirectory = cacheDirectory
        return try SSHConfig.resolution(host, overrides: overrides)
    }

    func testSecondResolutionComesFromTheCacheUntilTheConfigChanges() throws {
        try write("config", "Include \(directory)/conf.d/*.conf\nHost web1\n  Port 2222\n")
        backdate(directory + "/conf.d")
        XCTAssertFalse(try resolve().fromCache)
        let cached = try resolve()
        XCTAssertTrue(cached.fromCache)
        XCTAssertEqual(cached.target.port, 2222)

        // The file changes: a fresh answer.
        try write("config", "Include \(directory)/conf.d/*.conf\nHost web1\n  Port 2223\n", age: 30)
        XCTAssertEqual(try resolve().target.port, 2223)
        XCTAssertTrue(try resolve().fromCache)

        // A new file matching the Include glob: a fresh answer.
        try write("conf.d/early.conf", "Host web1\n  User included\n")
        backdate(directory + "/conf.d", age: 20)
        let included = try resolve()
        XCTAssertFalse(included.fromCache)
        XCTAssertEqual(included.target.user, "included")

        // Another destination or another argv is another entry.
        XCTAssertFalse(try resolve("web2").fromCache)
    }

    func testEnvironmentReferencesAreWatched() throws {
        try write("config", "Host web1\n  IdentityFile ${TETHER_CACHE_TEST}/key\n")
        setenv("TETHER_CACHE_TEST", "/one", 1)
        defer { unsetenv("TETHER_CACHE_TEST") }
        XCTAssertEqual(try resolve().target.identityFiles.first, "/one/key")
        XCTAssertTrue(try resolve().fromCache)
        setenv("TETHER_CACHE_TEST", "/two", 1)
        let changed = try resolve()
        XCTAssertFalse(changed.fromCache)
        XCTAssertEqual(changed.target.identityFiles.first, "/two/key")
    }

    func testMatchExecAndFreshFilesAreNeverCached() throws {
        try write("config", "Match exec \"test -e \(directory)/flag\"\n  Port 2400\n")
        XCTAssertEqual(try resolve().target.port, 22)
        try write("flag", "")
        let second = try resolve()
        XCTAssertFalse(second.fromCache, "a Match exec answer is never reused")
        XCTAssertEqual(second.target.port, 2400)

        try write("config", "Host web1\n  Port 2500\n", age: 0)
        XCTAssertFalse(try resolve().fromCache)
        XCTAssertFalse(try resolve().fromCache, "a file changed a moment ago may change again unseen")
    }

    func testACacheEntryOfAnotherUserOrOpenToOthersIsIgnored() throws {
        try write("config", "Host web1\n  Port 2222\n")
        _ = try resolve()
        XCTAssertTrue(try resolve().fromCache)
        for entry in try Processes.run("/bin/ls", [cacheDirectory]).stdoutText.split(separator: "\n") {
            chmod(cacheDirectory + "/" + entry, 0o644)
        }
        XCTAssertFalse(try resolve().fromCache)
    }
}

enum FileManagerless {
    static func mkdir(_ path: String) throws {
        guard Glibc.mkdir(path, 0o700) == 0 else { throw SystemError.last("mkdir \(path)") }
    }
}
