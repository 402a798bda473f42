import XCTest
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport

/// A second, real Unix user against our host processes: the kernel (directory modes)
/// keeps it away from our sockets, SO_PEERCRED refuses it even where the modes don't,
/// and a subsystem refuses a runtime directory that isn't its own or is open to others.
///
/// Needs root: it creates a throwaway user (useradd, removed with userdel when the class
/// is done) and runs processes as that user with `setpriv`. The foreign connects are made
/// by /usr/bin/perl (perl-base is Essential on Debian, so it is always there).
final class OtherUserTests: HostTestCase {
    private var other: OtherUser!

    override func setUpWithError() throws {
        guard geteuid() == 0 else {
            throw XCTSkip("needs root: creates a second Unix user (useradd) and runs processes as it (setpriv)")
        }
        try super.setUpWithError()
        other = try OtherUser.shared()
    }

    override class func tearDown() {
        OtherUser.removeShared()
        super.tearDown()
    }

    // MARK: (a) the sockets are out of reach

    func testAnotherUserCannotReachOurSockets() throws {
        let (client, session) = try sessionWithOutput()
        // Open the fixture's own temp directory for traversal, so the only barrier left is
        // the runtime directory's 0700 — the one a real /tmp/tether-UID has.
        try chmodOrThrow(host.directory, 0o711)
        let runtime = try fileStatus(host.runtimeDirectory)
        XCTAssertEqual(runtime.st_mode & 0o777, 0o700)
        XCTAssertEqual(runtime.st_uid, geteuid())
        XCTAssertEqual(try fileStatus(paths.registrySocket).st_mode & 0o777, 0o600)
        XCTAssertEqual(try fileStatus(paths.runspaceSocket(session.instanceID)).st_mode & 0o777, 0o600)
        XCTAssertEqual(try fileStatus(paths.gatewaySocket).st_mode & 0o777, 0o600)

        for socket in [paths.registrySocket, paths.gatewaySocket, paths.runspaceSocket(session.instanceID)] {
            let attempt = try other.connect(socket, hello: helloFrame)
            XCTAssertEqual(attempt.verdict, "connect: Permission denied", "\(socket): \(attempt)")
        }
        XCTAssertEqual(try run(client, "echo still ours"), "still ours\n")
    }

    func testPeerCredentialsRefuseAnotherUserWhereModesWouldNot() throws {
        let (client, session) = try sessionWithOutput()
        let registry = try XCTUnwrap(host.registryPID())
        let sockets = [paths.registrySocket, paths.runspaceSocket(session.instanceID), paths.gatewaySocket]
        // Simulate a broken setup (an admin's chmod, a bad umask): every directory
        // traversable and both sockets world-writable. Only SO_PEERCRED is left.
        let opened: [(String, mode_t, mode_t)] = [
            (host.directory, 0o711, 0o700), (paths.runtimeDirectory, 0o711, 0o700),
            (paths.sessionsDirectory, 0o711, 0o700),
            (sockets[0], 0o666, 0o600), (sockets[1], 0o666, 0o600), (sockets[2], 0o666, 0o600),
        ]
        for (path, open, _) in opened { try chmodOrThrow(path, open) }
        defer { for (path, _, closed) in opened.reversed() { chmod(path, closed) } }

        for socket in sockets {
            // The control: the very same connect and hello, as our own uid, is answered.
            let ours = try OtherUser.connectAsCurrentUser(socket, hello: helloFrame)
            XCTAssertTrue(ours.verdict.hasPrefix("answered"), "our own uid at \(socket): \(ours)")
            // The other user gets through the kernel's checks but is hung up on at once.
            let theirs = try other.connect(socket, hello: helloFrame)
            XCTAssertTrue(theirs.output.hasPrefix("connected\n"), "the modes let \(other.name) connect to \(socket): \(theirs)")
            XCTAssertTrue(["end of file", "read: Connection reset by peer"].contains(theirs.verdict),
                          "\(socket) must close on a foreign peer without a byte: \(theirs)")
        }
        try eventually("the registry logs the refused peer") {
            host.hostLog.contains("refused a connection: refusing a Unix socket peer with uid \(other.uid) (pid ")
        }
        XCTAssertEqual(host.registryPID(), registry, "the registry refused the peer and went on")
        XCTAssertEqual(try run(client, "echo still ours"), "still ours\n")
    }

    // MARK: (b) a runtime directory of another uid

    func testAnotherUsersSubsystemRefusesOurRuntimeDirectory() throws {
        _ = try sessionWithOutput()
        let registry = try XCTUnwrap(host.registryPID())
        // Let the other user see the runtime directory itself (not into it), as /tmp does.
        try chmodOrThrow(host.directory, 0o711)
        let theirState = host.directory + "/state-of-\(other.name)"
        try other.makeOwnDirectory(theirState)

        let theirs = try ProtocolTestClient(fixture: host, clientID: UUID().uuidString.lowercased(),
                                            command: other.command([try other.reachable(host.subsystemPath), "--runtime-dir", host.runtimeDirectory,
                                                                    "--state-dir", theirState]))
        defer { theirs.kill() }
        XCTAssertThrowsError(try theirs.listSessions()) { error in
            guard case ProtocolTestClient.ClientError.failure(let body) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(body.code, .unavailable)
            XCTAssertTrue(body.message.contains("\(host.runtimeDirectory) is owned by uid \(geteuid()), not by uid \(other.uid): refusing to use it"),
                          body.message)
        }
        XCTAssertEqual(host.registryPIDs(), [registry], "no registry of the other user in our directory")
        theirs.close()
        XCTAssertEqual(try theirs.waitForExit(), .exited(0))
    }

    func testRuntimeDirectorySquattedByAnotherUserIsRefused() throws {
        // Another user made "our" runtime directory first (the /tmp/tether-UID attack).
        try other.makeOwnDirectory(host.runtimeDirectory)
        let client = try connect()
        XCTAssertThrowsError(try client.listSessions()) { error in
            guard case ProtocolTestClient.ClientError.failure(let body) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(body.code, .unavailable)
            XCTAssertTrue(body.message.contains("\(host.runtimeDirectory) is owned by uid \(other.uid), not by uid \(geteuid()): refusing to use it"),
                          body.message)
        }
        XCTAssertEqual(host.registryPIDs(), [], "no registry started in a directory another user controls")
        XCTAssertEqual(try directoryEntries(host.runtimeDirectory), [], "nothing of ours was put there")
    }

    // MARK: (c) a runtime directory open to others

    func testRuntimeDirectoryOpenToOthersIsRefusedWithTheFix() throws {
        try makeDirectory(host.runtimeDirectory, mode: 0o755)
        let client = try connect()
        XCTAssertThrowsError(try client.listSessions()) { error in
            guard case ProtocolTestClient.ClientError.failure(let body) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(body.code, .unavailable)
            XCTAssertTrue(body.message.contains(
                "\(host.runtimeDirectory) is accessible by other users (mode 755): refusing to use it; run chmod 700 \(host.runtimeDirectory)"),
                body.message)
        }
        XCTAssertEqual(host.registryPIDs(), [])
        XCTAssertEqual(try directoryEntries(host.runtimeDirectory), [], "no socket in a directory others can enter")

        // The advice in the message is the whole fix; the same connection then works.
        try chmodOrThrow(host.runtimeDirectory, 0o700)
        XCTAssertEqual(try client.listSessions(), [])
        XCTAssertEqual(host.registryPIDs().count, 1)
    }

    func testStateDirectoryOpenToOthersIsRefused() throws {
        try makeDirectory(host.stateDirectory, mode: 0o750)
        let client = try connect()
        XCTAssertThrowsError(try client.createSession(name: "nope")) { error in
            guard case ProtocolTestClient.ClientError.failure(let body) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(body.code, .unavailable)
            XCTAssertTrue(body.message.contains("\(host.stateDirectory) is accessible by other users (mode 750): refusing to use it"),
                          body.message)
        }
        XCTAssertEqual(host.registryPIDs(), [])
    }

    // MARK: Helpers

    private var paths: HostPaths { HostPaths(runtimeDirectory: host.runtimeDirectory, stateDirectory: host.stateDirectory) }

    /// What a subsystem says first on a registry or runspace socket.
    private var helloFrame: [UInt8] {
        Frame(type: .hello, channel: 0,
              payload: Hello(role: .subsystem, clientID: clientID, clientHost: "other-user-test").payload()).encoded()
    }

    /// A session with a live runspace (its socket exists) and a live registry.
    private func sessionWithOutput() throws -> (ProtocolTestClient, SessionInfo) {
        let client = try connect()
        let session = try openSession(client, name: "private")
        XCTAssertEqual(try run(client, "echo mine"), "mine\n")
        return (client, session)
    }

    private func fileStatus(_ path: String) throws -> stat {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SystemError.last("stat \(path)") }
        return info
    }

    private func chmodOrThrow(_ path: String, _ mode: mode_t) throws {
        guard chmod(path, mode) == 0 else { throw SystemError.last("chmod \(String(mode, radix: 8)) \(path)") }
    }

    private func makeDirectory(_ path: String, mode: mode_t) throws {
        guard mkdir(path, 0o700) == 0 else { throw SystemError.last("mkdir \(path)") }
        try chmodOrThrow(path, mode)  // exactly `mode`, whatever the umask
    }

    private func directoryEntries(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

/// The throwaway second user: created once per test run, removed at the end. Its GECOS
/// field names the creating pid, so users left by a killed run are removed by the next.
final class OtherUser: @unchecked Sendable {
    let name: String
    let uid: uid_t
    let gid: gid_t

    private static let prefix = "tether-other-"
    nonisolated(unsafe) private static var current: OtherUser?

    private init(name: String, uid: uid_t, gid: gid_t) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }

    static func shared() throws -> OtherUser {
        if let current { return current }
        sweepAbandoned()
        let name = prefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let made = try Processes.run("useradd", ["-M", "-s", "/bin/bash", "-c", "tether tests (pid \(getpid()))", name])
        guard made.status == .exited(0) else {
            throw TestSupportError("useradd \(name) failed (\(made.status)): \(made.stderrText)")
        }
        guard let entry = getpwnam(name) else { throw TestSupportError("useradd \(name) succeeded but getpwnam finds no such user") }
        let user = OtherUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        current = user
        return user
    }

    static func removeShared() {
        guard let current else { return }
        self.current = nil
        _ = try? Processes.run("userdel", [current.name])
        if let binaries = current.binaries { _ = try? Processes.run("/bin/rm", ["-rf", binaries]) }
    }

    /// A fresh 0755 directory holding what this user runs of ours (see `reachable`).
    private var binaries: String?

    /// `path` where this user can execute it. The build may sit where other users can't
    /// traverse (a clone under /root, in a `mktemp -d` folder): the file is linked — or
    /// copied, across file systems — into a 0755 directory of its own under /tmp.
    func reachable(_ path: String) throws -> String {
        if binaries == nil {
            var template = Array("/tmp/tether-other-bin-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw SystemError.last("mkdtemp") }
            let directory = String(cString: made)
            guard chmod(directory, 0o755) == 0 else { throw SystemError.last("chmod \(directory)") }
            binaries = directory
        }
        let target = binaries! + "/" + (path.split(separator: "/").last.map(String.init) ?? "binary")
        if access(target, X_OK) == 0 { return target }
        if link(path, target) != 0 {
            try Processes.check("/bin/cp", [path, target])
        }
        guard chmod(target, 0o755) == 0 else { throw SystemError.last("chmod \(target)") }
        return target
    }

    /// Removes `tether-other-*` users whose creating test process is gone.
    private static func sweepAbandoned() {
        let passwd = String(decoding: Descriptors.readFile("/etc/passwd") ?? [], as: UTF8.self)
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count > 4, fields[0].hasPrefix(prefix),
                  let open = fields[4].range(of: "(pid "), let close = fields[4].range(of: ")", range: open.upperBound..<fields[4].endIndex),
                  let pid = pid_t(fields[4][open.upperBound..<close.lowerBound]),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            _ = try? Processes.run("userdel", [String(fields[0])])
        }
    }

    /// `argv` run as this user: its uid, gid and groups, and a minimal environment.
    func command(_ argv: [String]) -> [String] {
        ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--",
         "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=/nonexistent"] + argv
    }

    /// A directory owned by this user, mode 0700.
    func makeOwnDirectory(_ path: String) throws {
        guard mkdir(path, 0o700) == 0 else { throw SystemError.last("mkdir \(path)") }
        guard chown(path, uid, gid) == 0 else { throw SystemError.last("chown \(name) \(path)") }
    }

    /// What a connect to a Unix socket got: `output` is the script's whole report, the
    /// `verdict` its last line ("connect: Permission denied", "end of file",
    /// "answered N bytes", …).
    struct Attempt: CustomStringConvertible {
        var output: String
        var verdict: String { output.split(separator: "\n").last.map(String.init) ?? "" }
        var description: String { output.replacingOccurrences(of: "\n", with: " | ") }
    }

    /// Connects to `socket` as this user, sends `hello`, and reports what came back.
    func connect(_ socket: String, hello: [UInt8]) throws -> Attempt {
        try OtherUser.attempt(command(["/usr/bin/perl", "-e", OtherUser.connectScript, socket, OtherUser.hex(hello)]))
    }

    /// The same attempt as ourselves (the control).
    static func connectAsCurrentUser(_ socket: String, hello: [UInt8]) throws -> Attempt {
        try attempt(["/usr/bin/perl", "-e", connectScript, socket, hex(hello)])
    }

    private static func attempt(_ argv: [String]) throws -> Attempt {
        let result = try Processes.run(argv[0], Array(argv.dropFirst()), environment: ["PATH=/usr/bin:/bin", "LC_ALL=C"], timeout: 20)
        guard case .exited = result.status, result.stderrText.isEmpty else {
            throw TestSupportError("`\(argv.joined(separator: " "))` \(result.status): \(result.stderrText)")
        }
        return Attempt(output: result.stdoutText)
    }

    /// Connect, send the hello, read once (10 s at most). Every outcome is one line.
    private static let connectScript = #"""
        use strict; use Socket;
        $SIG{PIPE} = 'IGNORE';
        $SIG{ALRM} = sub { print "no answer within 10 s\n"; exit 0 };
        alarm 10;
        socket(my $s, AF_UNIX, SOCK_STREAM, 0) or do { print "socket: $!\n"; exit 0 };
        connect($s, pack_sockaddr_un($ARGV[0])) or do { print "connect: $!\n"; exit 0 };
        print "connected\n";
        defined(syswrite($s, pack("H*", $ARGV[1]))) or print "write: $!\n";
        my $n = sysread($s, my $buffer, 65536);
        if (!defined $n) { print "read: $!\n" } elsif ($n == 0) { print "end of file\n" } else { print "answered $n bytes\n" }
        """#

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xf)]] })
    }
}
