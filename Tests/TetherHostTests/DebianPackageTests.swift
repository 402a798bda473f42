import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Issue 17 item 1: the Debian package, installed, upgraded, removed and purged with apt on
/// this machine itself (CI: a fresh Debian 12 root), with the machine's own sshd
/// configuration (/etc/ssh/sshd_config and its drop-in directory) served by a real sshd on
/// a loopback port. After each step sshd still accepts logins; after install the
/// subsystem works through the installed binaries; after remove and purge the drop-in is
/// gone; a conflicting `Subsystem tether` line makes the install fail with sshd's
/// configuration untouched. Everything is put back at the end, even on failure.
///
/// Runs as root with dpkg and apt (else skipped), on the release build scripts/test makes
/// (as root) before the tests — the package adds no build of its own.
final class DebianPackageTests: XCTestCase {
    private var work = ""
    private var sshd: pid_t = 0
    private var sshdLog: String { work + "/sshd.log" }
    private var port: UInt16 = 0
    /// Whether our sshd writes /run/sshd.pid, so the maintainer scripts' reload reaches it.
    private var ownsSystemPIDFile = false
    private static let conflict = "/etc/ssh/sshd_config.d/00-tether-test-conflict.conf"
    private static let dropin = "/etc/ssh/sshd_config.d/tether.conf"

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard geteuid() == 0 else { throw XCTSkip("installs a package: needs root") }
        for tool in ["/usr/bin/dpkg", "/usr/bin/apt-get", "/usr/bin/dpkg-deb", "/usr/bin/dpkg-shlibdeps", "/usr/sbin/sshd"]
        where access(tool, X_OK) != 0 {
            throw XCTSkip("\(tool) is missing (scripts/setup installs dpkg-dev and openssh-server)")
        }
        guard packageStatus() == nil || packageStatus() == "not-installed" else {
            throw XCTSkip("a tether package is on this machine already (\(packageStatus() ?? "")): not touching it")
        }
        guard access(Self.dropin, F_OK) != 0 else { throw XCTSkip("\(Self.dropin) exists (scripts/install-host?): not touching it") }
        for binary in ["tether", "tether-subsystem"] where access(PackageLayout.root + "/.build/release/" + binary, X_OK) != 0 {
            throw XCTSkip("no release build of \(binary): scripts/test makes one when run as root (or: swift build -c release --product \(binary))")
        }
        var template = Array("/tmp/tether-deb-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError.last("mkdtemp")
        }
        work = String(cString: made)
    }

    override func tearDown() {
        if !work.isEmpty {
            // Whatever happened: no package, no conflict file, no sshd or registry of ours.
            if let status = packageStatus(), status != "not-installed" {
                _ = try? Processes.run("/usr/bin/dpkg", ["--purge", "tether"], environment: aptEnvironment, timeout: 300)
            }
            unlink(Self.conflict)
            stopSSHD()
            if let pid = Int32(String(decoding: Descriptors.readFile(work + "/runtime/registry.pid") ?? [], as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)) {
                _ = kill(pid, SIGKILL)
            }
            if (testRun?.totalFailureCount ?? 0) > 0 {  // (hasSucceeded is false until the run stops)
                print("---- sshd log:\n\(String(decoding: Descriptors.readFile(sshdLog) ?? [], as: UTF8.self).suffix(3000))")
            }
            _ = try? Processes.run("/bin/rm", ["-rf", work])
        }
        super.tearDown()
    }

    func testAptInstallUpgradeRemovePurgeKeepSSHDWorking() throws {
        let original = try Processes.run("/bin/sh", ["-c", "cat /etc/ssh/sshd_config; ls -la /etc/ssh/sshd_config.d"])
        let deb = try package()
        let newer = try repackage(deb, version: releaseVersion() + "+test1")
        try startSSHD()
        try assertLoginWorks("before install", reloads: 0)
        XCTAssertFalse(try subsystemAnswers(), "no tether subsystem before the install")

        // 1. A conflicting Subsystem line: the install fails, sshd's configuration stays valid.
        try Descriptors.writeFile(Self.conflict, "Subsystem tether /bin/false\n", mode: 0o644)
        let refused = try apt(["install", "-y", deb])
        XCTAssertNotEqual(refused.status, .exited(0), "the install must fail: \(refused.stdoutText)")
        XCTAssertTrue(refused.allText.contains("sshd -t refused"), refused.allText)
        XCTAssertNotEqual(access(Self.dropin, F_OK), 0, "the drop-in was taken back")
        try assertSSHDAcceptsItsConfiguration()
        unlink(Self.conflict)
        let configured = try Processes.run("/usr/bin/dpkg", ["--configure", "-a"], environment: aptEnvironment, timeout: 300)
        XCTAssertEqual(configured.status, .exited(0), configured.allText)

        // 2. Installed: the drop-in, both binaries, man pages, completions; sshd reloaded.
        try assertInstalled(version: releaseVersion())
        try assertLoginWorks("after install", reloads: 1)
        XCTAssertTrue(try subsystemAnswers(), "the subsystem answers after install")
        try assertSessionWorks()

        // 3. Upgrade: the drop-in stays, nothing to reload, sessions' subsystem still there.
        let upgraded = try apt(["install", "-y", newer])
        XCTAssertEqual(upgraded.status, .exited(0), upgraded.allText)
        try assertInstalled(version: releaseVersion() + "+test1")
        try assertLoginWorks("after upgrade (the drop-in unchanged: no reload)", reloads: 1)
        try assertSessionWorks()

        // 4. Remove: the drop-in and binaries go, sshd reloaded and still accepting logins.
        let removed = try apt(["remove", "-y", "tether"])
        XCTAssertEqual(removed.status, .exited(0), removed.allText)
        try assertRemoved()
        try assertLoginWorks("after remove", reloads: 2)
        XCTAssertFalse(try subsystemAnswers(), "no tether subsystem after remove")

        // 5. Install again, then purge.
        let again = try apt(["install", "-y", deb])
        XCTAssertEqual(again.status, .exited(0), again.allText)
        try assertLoginWorks("after installing again", reloads: 3)
        XCTAssertTrue(try subsystemAnswers())
        let purged = try apt(["purge", "-y", "tether"])
        XCTAssertEqual(purged.status, .exited(0), purged.allText)
        try assertRemoved()
        XCTAssertTrue(packageStatus() == nil || packageStatus() == "not-installed", packageStatus() ?? "")
        try assertLoginWorks("after purge", reloads: 4)

        for output in [refused, upgraded, removed, again, purged] {
            XCTAssertFalse(output.allText.contains("No such file"), "no noise from the maintainer scripts: \(output.allText)")
        }
        let after = try Processes.run("/bin/sh", ["-c", "cat /etc/ssh/sshd_config; ls -la /etc/ssh/sshd_config.d"])
        XCTAssertEqual(stripTimes(after.stdoutText), stripTimes(original.stdoutText), "sshd's configuration is as it was")
    }

    func testInstallHostInstallsAndUninstallsWithoutDpkg() throws {
        let sshdDir = work + "/etc-ssh"
        let prefix = work + "/prefix"
        try FileManager.default.createDirectory(atPath: sshdDir, withIntermediateDirectories: true)
        try Descriptors.writeFile(sshdDir + "/sshd_config",
                                  "Include \(sshdDir)/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\n", mode: 0o644)
        let script = PackageLayout.root + "/scripts/install-host"
        let installed = try Processes.run(script, ["--no-build", "--prefix", prefix, "--sshd-dir", sshdDir], timeout: 120)
        XCTAssertEqual(installed.status, .exited(0), installed.allText)
        XCTAssertEqual(access(prefix + "/libexec/tether-subsystem", X_OK), 0)
        let dropin = String(decoding: Descriptors.readFile(sshdDir + "/sshd_config.d/tether.conf") ?? [], as: UTF8.self)
        XCTAssertTrue(dropin.contains("Subsystem tether \(prefix)/libexec/tether-subsystem"), dropin)
        XCTAssertEqual(try Processes.run("/usr/sbin/sshd", ["-t", "-f", sshdDir + "/sshd_config"]).status, .exited(0))

        // A conflicting line: sshd -t refuses, everything is rolled back.
        try Descriptors.writeFile(sshdDir + "/sshd_config.d/00-other.conf", "Subsystem tether /bin/false\n", mode: 0o644)
        unlink(sshdDir + "/sshd_config.d/tether.conf")
        let refused = try Processes.run(script, ["--no-build", "--prefix", prefix, "--sshd-dir", sshdDir], timeout: 120)
        XCTAssertEqual(refused.status, .exited(1), refused.allText)
        XCTAssertTrue(refused.allText.contains("rolled back"), refused.allText)
        XCTAssertNotEqual(access(sshdDir + "/sshd_config.d/tether.conf", F_OK), 0)
        unlink(sshdDir + "/sshd_config.d/00-other.conf")
        XCTAssertEqual(try Processes.run(script, ["--no-build", "--prefix", prefix, "--sshd-dir", sshdDir], timeout: 120).status,
                       .exited(0))

        let uninstalled = try Processes.run(script, ["--uninstall", "--prefix", prefix, "--sshd-dir", sshdDir], timeout: 120)
        XCTAssertEqual(uninstalled.status, .exited(0), uninstalled.allText)
        XCTAssertNotEqual(access(sshdDir + "/sshd_config.d/tether.conf", F_OK), 0, "the drop-in is gone")
        XCTAssertNotEqual(access(prefix + "/libexec/tether-subsystem", F_OK), 0, "the binary is gone")
        XCTAssertEqual(try Processes.run("/usr/sbin/sshd", ["-t", "-f", sshdDir + "/sshd_config"]).status, .exited(0))
    }

    // MARK: Steps

    private var aptEnvironment: [String] {
        Spawn.currentEnvironment().filter { !$0.hasPrefix("DEBIAN_FRONTEND=") } + ["DEBIAN_FRONTEND=noninteractive"]
    }

    private func apt(_ arguments: [String]) throws -> CommandResult {
        try Processes.run("/usr/bin/apt-get", ["-q", "-o", "Dpkg::Use-Pty=0"] + arguments, environment: aptEnvironment, timeout: 600)
    }

    /// dpkg's state of the package ("installed", "half-configured", "config-files",
    /// "not-installed"…), nil when dpkg has never heard of it.
    private func packageStatus() -> String? {
        guard let query = try? Processes.run("/usr/bin/dpkg-query", ["-W", "-f", "${db:Status-Status}", "tether"]),
              query.status == .exited(0) else { return nil }
        return query.stdoutText
    }

    private func isInstalled() -> Bool { packageStatus() == "installed" }

    private func releaseVersion() throws -> String {
        let line = try Processes.run(PackageLayout.root + "/.build/release/tether", ["--version"]).stdoutText
        return String(line.split(separator: " ")[1])
    }

    /// scripts/package on the existing release build; returns the .deb's path.
    private func package() throws -> String {
        let result = try Processes.run(PackageLayout.root + "/scripts/package", ["--no-build", "--output", work + "/deb"],
                                       timeout: 600)
        XCTAssertEqual(result.status, .exited(0), result.allText)
        let path = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(path.hasSuffix(".deb") && access(path, R_OK) == 0, result.allText)
        return path
    }

    /// The same package under a later version (an upgrade to install), without a second
    /// run of scripts/package: unpacked, its Version changed, packed uncompressed.
    private func repackage(_ deb: String, version: String) throws -> String {
        let tree = work + "/repack"
        try Processes.check("/usr/bin/dpkg-deb", ["-R", deb, tree], timeout: 300)
        let control = tree + "/DEBIAN/control"
        let text = String(decoding: Descriptors.readFile(control) ?? [], as: UTF8.self)
        let changed = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("Version: ") ? "Version: \(version)" : String($0) }.joined(separator: "\n")
        try Descriptors.writeFile(control, changed, mode: 0o644)
        let newer = work + "/tether_\(version).deb"
        try Processes.check("/usr/bin/dpkg-deb", ["--root-owner-group", "-Znone", "--build", tree, newer], timeout: 300)
        return newer
    }

    private func assertInstalled(version: String) throws {
        XCTAssertTrue(isInstalled())
        let dropin = String(decoding: Descriptors.readFile(Self.dropin) ?? [], as: UTF8.self)
        XCTAssertTrue(dropin.contains("\nSubsystem tether /usr/libexec/tether-subsystem\n"), dropin)
        try assertSSHDAcceptsItsConfiguration()
        for binary in ["/usr/bin/tether", "/usr/sbin/tether-subsystem"] {
            let reported = try Processes.run(binary, ["--version"])
            XCTAssertTrue(reported.stdoutText.contains(" \(version.split(separator: "+")[0]) (protocol "), reported.allText)
        }
        for page in ["/usr/share/man/man1/tether.1.gz", "/usr/share/man/man8/tether-subsystem.8.gz"] {
            let text = try Processes.run("/bin/sh", ["-c", "gzip -dc \(page)"]).stdoutText
            XCTAssertTrue(text.contains(".SH COMMANDS") && text.contains("OVERVIEW:"), page)
        }
        let completion = try Processes.run("/bin/bash", ["-c", "source /usr/share/bash-completion/completions/tether && complete -p tether"])
        XCTAssertTrue(completion.stdoutText.contains("_tether"), completion.allText)
        for file in ["/usr/share/zsh/vendor-completions/_tether", "/usr/share/fish/vendor_completions.d/tether.fish"] {
            XCTAssertEqual(access(file, R_OK), 0, file)
        }
    }

    private func assertRemoved() throws {
        XCTAssertNotEqual(access(Self.dropin, F_OK), 0, "the drop-in is gone")
        XCTAssertNotEqual(access("/usr/bin/tether", F_OK), 0)
        XCTAssertNotEqual(access("/usr/libexec/tether-subsystem", F_OK), 0)
        try assertSSHDAcceptsItsConfiguration()
    }

    private func assertSSHDAcceptsItsConfiguration() throws {
        let check = try Processes.run("/usr/sbin/sshd", ["-t"])
        XCTAssertEqual(check.status, .exited(0), "sshd -t: \(check.allText)")
    }

    // MARK: The machine's sshd configuration, served on a loopback port

    /// The machine's own configuration with only what a test must set on top: a free
    /// loopback port, our key, and where the subsystem keeps its sessions.
    private func startSSHD() throws {
        _ = mkdir("/run/sshd", 0o755)
        if access(work + "/key", F_OK) != 0 {
            try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", work + "/key"])
            try FileManager.default.copyItem(atPath: work + "/key.pub", toPath: work + "/authorized_keys")
        }
        port = try SSHDFixture.freeLoopbackPort()
        let hostKey = String(decoding: Descriptors.readFile("/etc/ssh/ssh_host_ed25519_key.pub") ?? [], as: UTF8.self)
        try Descriptors.writeFile(work + "/known_hosts", "[127.0.0.1]:\(port) \(hostKey)", mode: 0o600)
        try Descriptors.writeFile(work + "/ssh_config", """
            Host pkghost
                HostName 127.0.0.1
                Port \(port)
                User root
                IdentityFile \(work)/key
                IdentitiesOnly yes
                IdentityAgent none
                UserKnownHostsFile \(work)/known_hosts
                StrictHostKeyChecking yes
                BatchMode yes

            """, mode: 0o600)
        // The maintainer scripts reload the sshd that /run/sshd.pid names when systemd is
        // not PID 1: ours, if no system sshd runs. Otherwise they reload the system's, and
        // ours is restarted to read the change.
        ownsSystemPIDFile = access("/run/systemd/system", F_OK) != 0 && access("/run/sshd.pid", F_OK) != 0
        let pidFile = ownsSystemPIDFile ? "/run/sshd.pid" : work + "/sshd.pid"
        let log = open(sshdLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { close(log) }
        var options = Spawn.Options()
        options.fileActions = [1: log, 2: log]
        options.devNull = [0]
        let command = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/usr/sbin/sshd", "-D", "-e",
                       "-o", "Port=\(port)", "-o", "ListenAddress=127.0.0.1", "-o", "PidFile=\(pidFile)",
                       "-o", "AuthorizedKeysFile=\(work)/authorized_keys", "-o", "StrictModes=no",
                       "-o", "PermitRootLogin=prohibit-password",
                       "-o", "SetEnv=TETHER_RUNTIME_DIR=\(work)/runtime TETHER_STATE_DIR=\(work)/state"]
        sshd = try Spawn.spawn(path: command[0], arguments: command, options: options)
        try waitForLog("Server listening on 127.0.0.1 port \(port)", count: 1)
    }

    private func stopSSHD() {
        guard sshd > 0 else { return }
        _ = kill(sshd, SIGTERM)
        _ = try? Processes.waitForChild(sshd, timeout: 10)
        sshd = 0
        if ownsSystemPIDFile { unlink("/run/sshd.pid") }
    }

    private func sshdLogText() -> String { String(decoding: Descriptors.readFile(sshdLog) ?? [], as: UTF8.self) }

    private func waitForLog(_ line: String, count: Int) throws {
        let deadline = Deadline(secondsFromNow: 30)
        while sshdLogText().components(separatedBy: line).count - 1 < count {
            guard !deadline.hasPassed else { throw TestSupportError("sshd did not log \"\(line)\" \(count) times:\n\(sshdLogText())") }
            usleep(20_000)
        }
    }

    /// sshd lets us log in, having been reloaded `reloads` times so far by the maintainer
    /// scripts (counted when they reach ours through /run/sshd.pid; else it is restarted
    /// here to read the change).
    private func assertLoginWorks(_ when: String, reloads: Int) throws {
        if ownsSystemPIDFile {
            // A reload is SIGHUP: sshd re-executes itself and listens again.
            try waitForLog("Server listening on 127.0.0.1 port \(port)", count: reloads + 1)
            XCTAssertEqual(sshdLogText().components(separatedBy: "Received SIGHUP; restarting.").count - 1, reloads,
                           "\(when): sshd reloaded \(reloads) times")
        } else if reloads > 0 {
            stopSSHD()
            try startSSHD()
        }
        let login = try Processes.run("/usr/bin/ssh", ["-F", work + "/ssh_config", "pkghost", "echo logged-in"], timeout: 60)
        XCTAssertEqual(login.stdoutText, "logged-in\n", "\(when): \(login.allText)")
    }

    /// `ssh -s pkghost tether` gets a subsystem (it waits for a hello: closing stdin ends it).
    private func subsystemAnswers() throws -> Bool {
        let result = try Processes.run("/usr/bin/ssh", ["-F", work + "/ssh_config", "-s", "pkghost", "tether"], timeout: 60)
        return !result.stderrText.contains("subsystem request failed")
    }

    /// The installed client, through the installed subsystem: a session with state.
    private func assertSessionWorks() throws {
        let environment = Spawn.currentEnvironment().filter { !$0.hasPrefix("TETHER_") }
            + ["TETHER_HOME=\(work)/home", "TETHER_SSH_CONFIG=\(work)/ssh_config", "TETHER_KEEPER=0"]
        let invoked = try Processes.run("/usr/bin/tether", ["invoke", "--computer", "pkghost", "--",
                                                            "x=1; echo \"$x $TETHER_RUNTIME_DIR\"; readlink /proc/$PPID/exe"],
                                        environment: environment, timeout: 60)
        XCTAssertEqual(invoked.status, .exited(0), invoked.allText)
        XCTAssertTrue(invoked.stdoutText.hasPrefix("1 \(work)/runtime\n/usr/libexec/tether-subsystem"), invoked.allText)
    }

    private func stripTimes(_ listing: String) -> String {
        // ls -la's "." entry changes its time when a file comes and goes; names and modes matter.
        listing.split(separator: "\n").map { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count >= 9 ? "\(fields[0]) \(fields[8...].joined(separator: " "))" : String(line)
        }.joined(separator: "\n")
    }
}

private extension CommandResult {
    var allText: String { stdoutText + stderrText }
}
