import XCTest
import Foundation
import Glibc
import TetherIO
import TetherProtocol
import TetherSSH
import TetherTestSupport
@testable import TetherClient

/// The client keeper end to end: real sshd fixtures, the built `tether` run as separate
/// processes (each test its own TETHER_HOME, so its own keeper), real `kill -9`.
final class KeeperTests: CLITestCase {
    private var keeperExecutable = ""
    private var keeperSocket = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        // The CLI names its keeper after its own executable as /proc/self/exe shows it.
        keeperExecutable = KeeperPaths.absolute(tetherPath)
        keeperSocket = KeeperControl.socketPath(home: ClientHome(directory: tetherHome), executable: keeperExecutable)
    }

    override func tearDown() {
        if (testRun?.totalFailureCount ?? 0) > 0 {
            print("---- keeper log:\n\(tail(keeperLog, 40))")
        }
        let keepers = ProcessTable.processes(mentioning: keeperSocket).map(\.pid)
        Processes.killAll(keepers)
        let base = String(keeperSocket.dropLast(".sock".count))
        for suffix in [".sock", ".lock", ".log"] { unlink(base + suffix) }
        super.tearDown()
    }

    // MARK: Helpers

    private var keeperLog: String {
        String(decoding: Descriptors.readFile(String(keeperSocket.dropLast(".sock".count)) + ".log") ?? [], as: UTF8.self)
    }

    private struct Status: Decodable {
        struct Link: Decodable {
            var destination: String
            var state: String
            var route: String?
            var clients: Int
            var opens: Int
            var channels: Int
            var waitingForSlowClient: Bool
        }
        var pid: Int32
        var links: [Link]
    }

    /// `tether keeper --status`, parsed; nil when no keeper runs.
    private func keeperStatus(environment: [String: String] = [:]) throws -> Status? {
        let result = try tether(["keeper", "--status"], environment: environment)
        if result.status == .exited(1) && result.stderrText.contains("no keeper is running") { return nil }
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        return try JSONDecoder().decode(Status.self, from: Data(result.stdout))
    }

    private func acceptedLogins(_ computer: SSHDFixture) -> Int {
        computer.sshdLog.components(separatedBy: "Accepted publickey").count - 1
    }

    private func newSession(_ name: String) throws {
        try check(["new", "alpha", "--name", name])
    }

    // MARK: Reuse and state

    func testCommandsShareOneWarmLinkAndKeepSessionState() throws {
        try newSession("s")
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "x=42; cd /tmp; echo set"]), "set\n")
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo \"$x $PWD\""]), "42 /tmp\n")
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "printf '%s|' \"$@\"", "a b", "c"]), "a b|c|")
        let listed = try getJSON()
        XCTAssertEqual(listed.first?["state"] as? String, "Opened", "\(listed)")

        let status = try XCTUnwrap(try keeperStatus(), "a keeper runs after the first command")
        XCTAssertEqual(status.links.count, 1, "\(status.links)")
        XCTAssertEqual(status.links.first?.state, "ready")
        XCTAssertEqual(status.links.first?.route, "subsystem", "a first link knows no gateway")
        XCTAssertGreaterThanOrEqual(status.links.first?.opens ?? 0, 5, "new, three invokes and get each used the link")
        XCTAssertEqual(status.links.first?.clients, 0)
        XCTAssertEqual(status.links.first?.channels, 0, "every channel was detached")
        XCTAssertEqual(acceptedLogins(alpha), 1, "one SSH login for every command:\n\(alpha.sshdLog)")
        XCTAssertEqual(alpha.subsystemPIDs().count, 1, "one subsystem process serves them all")
        XCTAssertEqual(ProcessTable.processes(mentioning: keeperSocket).count, 1, "exactly one keeper")
    }

    func testStdinAndLargeOutputPassThrough() throws {
        try newSession("s")
        let input = (0..<20_000).map { "line \($0)\n" }.joined()
        let upper = try tether(["invoke", "--name", "s", "--", "tr a-z A-Z"], stdin: Array(input.utf8))
        XCTAssertEqual(upper.status, .exited(0), upper.stderrText)
        XCTAssertEqual(upper.stdoutText, input.uppercased())

        // 24 MB: many records, the keeper's queues past their watermarks.
        let big = try tether(["invoke", "--name", "s", "--", "head -c 24000000 /dev/zero | tr '\\0' x; echo; echo err >&2"])
        XCTAssertEqual(big.status, .exited(0), big.stderrText)
        XCTAssertEqual(big.stdout.count, 24_000_001)
        XCTAssertEqual(big.stdout.filter { $0 != UInt8(ascii: "x") }, [UInt8(ascii: "\n")])
        XCTAssertEqual(big.stderrText, "err\n")
        XCTAssertEqual(acceptedLogins(alpha), 1)
    }

    func testConcurrentInvokesInTwoSessionsGetTheirOwnOutput() throws {
        try newSession("one")
        try newSession("two")
        let script = "for i in $(seq 1 40); do echo \"$1-$i\"; echo \"$1-err-$i\" >&2; sleep 0.01; done"
        let first = try startTether(["invoke", "--name", "one", "--", script, "one"], label: "one")
        let second = try startTether(["invoke", "--name", "two", "--", script, "two"], label: "two")
        XCTAssertEqual(try first.wait(), .exited(0), first.stderrText)
        XCTAssertEqual(try second.wait(), .exited(0), second.stderrText)
        for (run, name) in [(first, "one"), (second, "two")] {
            XCTAssertEqual(run.stdoutText, (1...40).map { "\(name)-\($0)\n" }.joined())
            XCTAssertEqual(run.stderrText, (1...40).map { "\(name)-err-\($0)\n" }.joined())
        }
        let status = try XCTUnwrap(try keeperStatus())
        XCTAssertEqual(status.links.count, 1)
        XCTAssertEqual(acceptedLogins(alpha), 1)
    }

    // MARK: Crashes

    func testKilledCLIMidCommandIsADisconnectAndReceiveGetsTheRest() throws {
        try newSession("s")
        // After line 5 the command waits for the gate file: the CLI is killed mid-command
        // however slowly a loaded machine runs it.
        let gate = workDirectory + "/victim.gate"
        let script = "for i in $(seq 1 30); do echo line-$i; if [ $i = 5 ]; then while [ ! -e \"$1\" ]; do sleep 0.05; done; fi; sleep 0.1; done"
        let running = try startTether(["invoke", "--name", "s", "--", script, gate], label: "victim")
        try eventually("the command's first line") { running.stdoutText.contains("line-2\n") }
        try Processes.kill9(running.pid)
        _ = try running.wait()
        try writeFile(gate, "")
        let printed = running.stdoutText.split(separator: "\n").map(String.init)

        // The keeper detached the dead CLI's channel: the session is free for a receive,
        // which replays what nobody acknowledged and follows the command to its end.
        let received = try tether(["receive", "--name", "s"], timeout: 30)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        let rest = received.stdoutText.split(separator: "\n").map(String.init)
        let all = (1...30).map { "line-\($0)" }
        guard let firstRest = rest.first, let start = all.firstIndex(of: firstRest) else {
            return XCTFail("receive printed nothing useful: \(received.stdoutText)")
        }
        XCTAssertLessThanOrEqual(start, printed.count, "no line lost between the dead CLI and receive")
        XCTAssertEqual(Array(printed.prefix(start)) + rest, all)
        let status = try XCTUnwrap(try keeperStatus())
        XCTAssertEqual(status.links.first?.channels, 0, "the dead CLI's channel was detached: \(status.links)")
        XCTAssertTrue(try check(["invoke", "--name", "s", "--", "echo still here"]).contains("still here"))
    }

    func testKilledKeeperIsRestartedByTheNextCLI() throws {
        try newSession("s")
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "v=kept; echo ok"]), "ok\n")
        let first = try XCTUnwrap(try keeperStatus()).pid
        try Processes.kill9(first)
        try Processes.waitForExit(first)

        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo $v"]), "kept\n")
        let second = try XCTUnwrap(try keeperStatus()).pid
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(acceptedLogins(alpha), 2, "the new keeper made one new link")
    }

    func testKeeperKilledMidCommandIsAConnectionLossAndNothingIsLost() throws {
        try newSession("s")
        let script = "for i in $(seq 1 20); do echo line-$i; sleep 0.1; done"
        // Without automatic resume (ResumeTests cover that): the loss itself is the subject.
        let running = try startTether(["invoke", "--name", "s", "--reconnect-timeout", "0", "--", script], label: "orphan")
        try eventually("the command's first line") { running.stdoutText.contains("line-1\n") }
        let keeper = try XCTUnwrap(try keeperStatus()).pid
        try Processes.kill9(keeper)
        XCTAssertEqual(try running.wait(), .exited(255), running.stderrText)
        XCTAssertTrue(running.stderrText.hasPrefix("tether: alpha: "), running.stderrText)
        XCTAssertTrue(running.stderrText.contains("keeper"), running.stderrText)

        let received = try tether(["receive", "--name", "s"], timeout: 30)
        XCTAssertEqual(received.status, .exited(0), received.stderrText)
        let combined = running.stdoutText.split(separator: "\n").map(String.init)
            + received.stdoutText.split(separator: "\n").map(String.init)
        var seen = Set<String>()
        let unique = combined.filter { seen.insert($0).inserted }
        XCTAssertEqual(unique, (1...20).map { "line-\($0)" })
    }

    /// A link whose connection died silently (the host side frozen, TCP still up) is
    /// found out by the keepalive before reuse, dropped, and replaced: the CLI waits one
    /// keepalive timeout, not forever.
    func testSilentlyDeadLinkIsReplacedAfterAKeepalive() throws {
        let checkAlways = ["TETHER_KEEPER_CHECK_AFTER": "0"]
        XCTAssertEqual(try tether(["new", "alpha", "--name", "s"], environment: checkAlways).status, .exited(0))
        XCTAssertEqual(try tether(["invoke", "--name", "s", "--", "echo pinged"], environment: checkAlways).stdoutText,
                       "pinged\n", "a live link answers the keepalive")
        let frozen = try XCTUnwrap(alpha.subsystemPIDs().first)
        XCTAssertEqual(kill(frozen, SIGSTOP), 0)
        defer { kill(frozen, SIGKILL); kill(frozen, SIGCONT) }

        let started = Date()
        let run = try tether(["invoke", "--name", "s", "--", "echo replaced"], environment: checkAlways, timeout: 40)
        XCTAssertEqual(run.status, .exited(0), run.stderrText)
        XCTAssertEqual(run.stdoutText, "replaced\n")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 4.5, "it waited for the keepalive")
        XCTAssertTrue(keeperLog.contains("no answer to a keepalive"), keeperLog)
        XCTAssertEqual(acceptedLogins(alpha), 2, "a new link replaced the dead one")
        // The keeper remembered the host's gateway from the first link's hello: the new
        // link went there (sshd started no second subsystem, so no login shell ran).
        XCTAssertTrue(keeperLog.contains("link ready (") && keeperLog.contains("via the gateway"), keeperLog)
        XCTAssertEqual(try keeperStatus()?.links.map(\.route), ["gateway"])
        XCTAssertEqual(alpha.sshdLog.components(separatedBy: "Starting session: subsystem 'tether'").count - 1, 1,
                       alpha.sshdLog)
    }

    /// Something answers on the keeper's socket but dies before answering (a keeper
    /// exiting just as the CLI connects): the CLI tries once more, then connects directly.
    func testKeeperThatNeverAnswersMeansADirectConnection() throws {
        try SecureDirectory.prepare(KeeperPaths(socket: keeperSocket).directory)
        let listener = try UnixSocket.listen(path: keeperSocket)
        setBlocking(listener)
        let accepted = LockedCounter()
        // Count only connections that say something: a CLI asking its keeper writes a
        // hello at once, while another client's stale-keeper sweep (same per-user
        // directory) only connects to see whether anything listens, then hangs up.
        let thread = Thread {
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { return }
                var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                var byte: UInt8 = 0
                if poll(&readable, 1, 5_000) > 0, read(fd, &byte, 1) == 1 { accepted.increment() }
                close(fd)
            }
        }
        thread.start()
        defer {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        let made = try tether(["new", "alpha", "--name", "s"], timeout: 30)
        XCTAssertEqual(made.status, .exited(0), made.stderrText)
        XCTAssertEqual(made.stderrText, "")
        XCTAssertEqual(accepted.value, 2, "asked twice, then went direct")
        XCTAssertEqual(acceptedLogins(alpha), 1)
    }

    /// The library opts in with an executable; one that can't run a keeper costs nothing
    /// but a direct connection (and is not tried again for every connect).
    func testLibraryWithAnExecutableThatIsNoKeeperConnectsDirectly() async throws {
        let home = ClientHome(directory: tetherHome)
        let broken = "/bin/false"
        defer {
            let base = String(KeeperControl.socketPath(home: home, executable: broken).dropLast(".sock".count))
            for suffix in [".sock", ".lock", ".log"] { unlink(base + suffix) }
        }
        let client = try TetherClient(home: home, keeper: .automatic(executable: broken))
        for _ in 0..<2 {
            let host = try await client.connect("alpha", options: ConnectionOptions(configFile: sshConfigPath))
            try await host.ping()
            await host.close()
        }
        XCTAssertEqual(acceptedLogins(alpha), 2, "two direct connections")
    }

    // MARK: Failures stay specific

    func testRefusedPortIsTheSameErrorWithAndWithoutTheKeeper() throws {
        let port = try closedPort()
        let viaKeeper = try tether(["get", "--computer", "alpha", "--port", String(port)], timeout: 20)
        let log = keeperLog  // read now: a keeper left with nothing exits (and cleans up) in seconds
        let direct = try tether(["get", "--computer", "alpha", "--port", String(port)],
                                environment: ["TETHER_KEEPER": "0"], timeout: 20)
        XCTAssertEqual(viaKeeper.status, .exited(255), viaKeeper.stderrText)
        XCTAssertEqual(direct.status, .exited(255), direct.stderrText)
        XCTAssertEqual(viaKeeper.stderrText, direct.stderrText)
        XCTAssertTrue(viaKeeper.stderrText.hasPrefix("tether: alpha"), viaKeeper.stderrText)
        XCTAssertTrue(viaKeeper.stderrText.contains("refused"), viaKeeper.stderrText)
        XCTAssertTrue(log.contains("refused"), "the keeper made that attempt:\n\(log)")
    }

    func testHostKeyMismatchIsTheSameErrorWithAndWithoutTheKeeper() throws {
        let keyPath = workDirectory + "/impostor"
        try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyPath])
        let impostor = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: keyPath + ".pub")), as: UTF8.self)
        let knownHosts = workDirectory + "/known_hosts_wrong"
        try writeFile(knownHosts, alpha.configuration.knownHosts(publicKeys: [impostor]))
        try writeFile(sshConfigPath, alpha.configuration.sshConfig.replacingOccurrences(of: alpha.knownHostsPath, with: knownHosts))

        let viaKeeper = try tether(["get", "--computer", "alpha"], timeout: 30)
        let direct = try tether(["get", "--computer", "alpha"], environment: ["TETHER_KEEPER": "0"], timeout: 30)
        XCTAssertEqual(viaKeeper.status, .exited(255), viaKeeper.stderrText)
        XCTAssertEqual(viaKeeper.stderrText, direct.stderrText)
        XCTAssertTrue(viaKeeper.stderrText.lowercased().contains("host key"), viaKeeper.stderrText)
        XCTAssertTrue(alpha.subsystemPIDs().isEmpty)
        XCTAssertEqual(try keeperStatus()?.links.count ?? 0, 0, "a failed link is not kept")
    }

    func testMissingSubsystemIsTheSameErrorThroughTheKeeper() throws {
        let viaKeeper = try tether(["get", "--computer", "alpha", "--subsystem", "no-such-subsystem"], timeout: 30)
        let direct = try tether(["get", "--computer", "alpha", "--subsystem", "no-such-subsystem"],
                                environment: ["TETHER_KEEPER": "0"], timeout: 30)
        XCTAssertEqual(viaKeeper.status, .exited(255), viaKeeper.stderrText)
        XCTAssertEqual(viaKeeper.stderrText, direct.stderrText)
    }

    func testEncryptedKeyFallsBackToADirectConnection() throws {
        // A key with a passphrase the keeper can't ask for: the CLI connects directly
        // (which could prompt on a terminal; here there is none, so it says so).
        let keyPath = workDirectory + "/locked_ed25519"
        try Processes.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret phrase", "-f", keyPath])
        let config = alpha.configuration.sshConfig.replacingOccurrences(of: alpha.clientKeyPath, with: keyPath)
        try writeFile(sshConfigPath, config)
        let result = try tether(["get", "--computer", "alpha"], timeout: 30)
        let log = keeperLog
        XCTAssertEqual(result.status, .exited(255), result.stderrText)
        XCTAssertTrue(result.stderrText.contains("encrypted"), result.stderrText)
        XCTAssertTrue(log.contains("needs a passphrase"), log)
    }

    // MARK: Selection and lifetime

    func testKeeperOffConnectsDirectly() throws {
        let off = ["TETHER_KEEPER": "0"]
        XCTAssertEqual(try tether(["new", "alpha", "--name", "s"], environment: off).status, .exited(0))
        let run = try tether(["invoke", "--name", "s", "--", "echo direct"], environment: off)
        XCTAssertEqual(run.stdoutText, "direct\n", run.stderrText)
        XCTAssertNil(try keeperStatus(), "no keeper was started")
        XCTAssertEqual(acceptedLogins(alpha), 2, "one login per command")
    }

    func testUnusedLinkClosesAndTheKeeperExits() throws {
        let brief = ["TETHER_KEEPER_PERSIST": "1"]
        let made = try tether(["new", "alpha", "--name", "s"], environment: brief)
        XCTAssertEqual(made.status, .exited(0), made.stderrText)
        let keeper = try XCTUnwrap(try keeperStatus()).pid
        // One second without a CLI closes the link (the subsystem sees the SSH
        // connection end); with nothing left to keep, the keeper exits.
        try Processes.waitForExit(keeper, timeout: 15)
        try eventually("the subsystem process ends") { alpha.subsystemPIDs().isEmpty }
        let base = String(keeperSocket.dropLast(".sock".count))
        for suffix in [".sock", ".lock", ".log"] {
            XCTAssertEqual(access(base + suffix, F_OK), -1, "a clean exit removes its \(suffix)")
        }
        // The next command starts a new keeper.
        XCTAssertEqual(try tether(["invoke", "--name", "s", "--", "echo again"], environment: brief).stdoutText, "again\n")
    }

    func testKeeperSurvivesGarbageFromALocalPeer() throws {
        try newSession("s")
        let fd = try UnixSocket.connect(path: keeperSocket)
        defer { close(fd) }
        let junk: [UInt8] = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        _ = junk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer = [UInt8](repeating: 0, count: 4096)
        var received: [UInt8] = []
        while true {
            let n = read(fd, &answer, answer.count)
            if n <= 0 { break }
            received += answer[0..<n]
        }
        var decoder = FrameDecoder()
        decoder.append(received)
        let frame = try XCTUnwrap(try decoder.next(), "an error frame before the close")
        XCTAssertEqual(frame.type, .error)
        XCTAssertEqual(try check(["invoke", "--name", "s", "--", "echo fine"]), "fine\n")
    }

    // MARK: Units

    func testLinkEndScannerPassesFramesAndTakesTheKeepersLastWord() throws {
        let record = Record(seq: 1, kind: .stdout, body: Array("hello".utf8)).frameBytes(channel: 3)
        let hostError = ControlCodec.errorFrame(channel: 0, ErrorBody(.badFrame, "host says no")).encoded()
        let end = KeeperLinkEnd.frame(.lost, "connection lost", failureKind: .connection).encoded()
        let stream = record + hostError + record + end
        // Every split point: bytes through are exactly the Tether frames, then the end.
        for split in 0...stream.count {
            var scanner = LinkEndScanner()
            var passed: [UInt8] = []
            var ended: KeeperLinkEnd?
            for chunk in [Array(stream[..<split]), Array(stream[split...])] where ended == nil {
                switch scanner.feed(chunk) {
                case .bytes(let bytes): passed += bytes
                case .ended(let bytes, let last): passed += bytes; ended = last
                }
            }
            XCTAssertEqual(passed, record + hostError + record, "split at \(split)")
            XCTAssertEqual(ended?.keeper, .lost, "split at \(split)")
            XCTAssertEqual(ended?.error(host: "h")?.isConnectionLevel, true)
        }
    }

    func testKeeperTargetMirrorsEverySSHTargetField() throws {
        var target = SSHTarget(alias: "a", hostName: "h", port: 2222, user: "u", identityFiles: ["/k"],
                               identitiesOnly: true, knownHostsFiles: ["/kh"], strictHostKeyChecking: .no,
                               connectTimeout: 3, serverAliveInterval: 4, subsystem: "s")
        target.globalKnownHostsFiles = ["/g"]
        XCTAssertEqual(Mirror(reflecting: target).children.count, KeeperTarget.mirroredFieldCount,
                       "SSHTarget gained a field: carry it in KeeperTarget too")
        let wire = try JSONDecoder().decode(KeeperTarget.self, from: JSONEncoder().encode(KeeperTarget(target)))
        XCTAssertEqual(wire.sshTarget, target)
    }

    func testKeeperSocketNameFollowsHomeAgentAndExecutable() {
        let a = KeeperPaths(home: ClientHome(directory: "/tmp/home-a"), executable: "/bin/sh")
        let b = KeeperPaths(home: ClientHome(directory: "/tmp/home-b"), executable: "/bin/sh")
        let c = KeeperPaths(home: ClientHome(directory: "/tmp/home-a"), executable: "/bin/ls")
        XCTAssertEqual(a, KeeperPaths(home: ClientHome(directory: "/tmp/home-a"), executable: "/bin/sh"))
        XCTAssertNotEqual(a.name, b.name)
        XCTAssertNotEqual(a.name, c.name)
        XCTAssertEqual(KeeperPaths(socket: a.socket), a)
        XCTAssertLessThan(a.socket.utf8.count, 100, "fits in sun_path")
    }

    /// The keeper pauses reading a CLI while its link is backed up; a CLI that exits then
    /// must still have its last frames (acks, stdin) delivered, and its end noticed — the
    /// pause can't protect anything once the peer is gone.
    func testFrameConnectionDeliversEverythingBeforeAHangupWhilePaused() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        let reactor = try Reactor()
        let connection = FrameConnection(reactor: reactor, socket: fds[0], name: "paused")
        var delivered: [UInt32] = []
        var closedWith: String?
        connection.onFrame = { frame in
            delivered.append(frame.channel)
            if delivered.count == 1 { connection.pauseReading() }
        }
        connection.onClose = { reason in
            closedWith = "\(reason)"
            reactor.stop()
        }
        connection.start()
        var bytes: [UInt8] = []
        for channel in 1...3 as ClosedRange<UInt32> {
            bytes += Frame(type: .ack, channel: channel, payload: ControlCodec.ack(UInt64(channel))).encoded()
        }
        reactor.schedule(after: 0.1) {
            _ = bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
            close(fds[1])
        }
        reactor.schedule(after: 5) { reactor.stop() }
        reactor.run()
        XCTAssertEqual(delivered, [1, 2, 3])
        XCTAssertEqual(closedWith, CloseReason.endOfStream.description)
    }

    // MARK: -

    /// `startTether` with stdout on a descriptor of the test's choosing.
    private func startTether(_ arguments: [String], label: String, stdoutFD: Int32) throws -> BackgroundTether {
        var environment = Spawn.currentEnvironment().filter {
            !$0.hasPrefix("TETHER_HOME=") && !$0.hasPrefix("TETHER_SSH_CONFIG=") && !$0.hasPrefix("TETHER_TRANSPORT=")
        }
        environment += ["TETHER_HOME=\(tetherHome)", "TETHER_SSH_CONFIG=\(sshConfigPath)"]
        let stderrPath = workDirectory + "/\(label).err"
        let err = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(err) }
        var options = Spawn.Options()
        options.fileActions = [1: stdoutFD, 2: err]
        options.devNull = [0]
        options.environment = environment
        let pid = try Spawn.spawn(path: tetherPath, arguments: ["tether"] + arguments, options: options)
        return BackgroundTether(pid: pid, stdoutPath: "/dev/null", stderrPath: stderrPath)
    }

    private func closedPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }
}

/// Two computers through one keeper: one link each, fan-out output intact.
final class KeeperTestsWithTwoComputers: CLITestCase {
    override var computerCount: Int { 2 }

    private var keeperSocket: String {
        KeeperControl.socketPath(home: ClientHome(directory: tetherHome), executable: KeeperPaths.absolute(tetherPath))
    }

    override func tearDown() {
        Processes.killAll(ProcessTable.processes(mentioning: keeperSocket).map(\.pid))
        let base = String(keeperSocket.dropLast(".sock".count))
        for suffix in [".sock", ".lock", ".log"] { unlink(base + suffix) }
        super.tearDown()
    }

    func testFanOutUsesOneLinkPerComputerAndStopClosesThem() throws {
        try check(["new", "alpha,beta", "--name", "web"])
        try check(["invoke", "--name", "web", "--", "n=$((RANDOM % 1)); echo set"])
        let result = try tether(["invoke", "--name", "web", "--", "seq 1 500; echo \"n=$n\""])
        XCTAssertEqual(result.status, .exited(0), result.stderrText)
        for name in ["alpha", "beta"] {
            let mine = result.stdoutText.split(separator: "\n").filter { $0.hasPrefix("[\(name)] ") }
                .map { String($0.dropFirst(name.count + 3)) }
            XCTAssertEqual(mine, (1...500).map(String.init) + ["n=0"], name)
        }
        let status = try tether(["keeper", "--status"])
        XCTAssertEqual(status.status, .exited(0), status.stderrText)
        XCTAssertEqual(status.stdoutText.components(separatedBy: "\"destination\"").count - 1, 2, status.stdoutText)
        for computer in computers {
            XCTAssertEqual(computer.sshdLog.components(separatedBy: "Accepted publickey").count - 1, 1, computer.hostAlias)
        }

        let keeper = try XCTUnwrap(ProcessTable.processes(mentioning: keeperSocket).first?.pid)
        XCTAssertEqual(try tether(["keeper", "--stop"]).status, .exited(0))
        try Processes.waitForExit(keeper, timeout: 10)
        try eventually("both subsystems end") { computers.allSatisfy { $0.subsystemPIDs().isEmpty } }
        XCTAssertEqual(try tether(["keeper", "--status"]).status, .exited(1))
    }
}

/// A counter shared with a helper thread.
private final class LockedCounter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
