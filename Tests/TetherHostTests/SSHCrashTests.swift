import XCTest
import Glibc
import TetherProtocol
import TetherTestSupport

/// Real `kill -9` of each host process: a subsystem crash is a dropped connection, a
/// registry crash loses nothing, an interpreter crash breaks only its own session.
final class SSHCrashTests: HostTestCase {
    func testKilledSubsystemLeavesTheSessionUsable() throws {
        let first = try connect()
        let session = try openSession(first, name: "survivor")
        try run(first, "x=41")

        let subsystems = host.subsystemPIDs()
        XCTAssertEqual(subsystems.count, 1, "one connection, one tether-subsystem: \(subsystems)")
        try Processes.kill9(try XCTUnwrap(subsystems.first))
        try first.waitForExit(timeout: 10)

        let second = try connect()
        let info = try second.session(session.instanceID)
        XCTAssertEqual(info.state, .running)
        _ = try second.attach(channel: 1, instanceID: session.instanceID)
        XCTAssertEqual(try run(second, "echo $x"), "41\n")
    }

    func testOutputWrittenWhileTheSubsystemIsDeadIsReplayedWithoutLossOrRepeat() throws {
        let first = try connect()
        let session = try openSession(first, name: "resume")
        let commandID = try first.startCommand(channel: 1, script: "seq 1 500; sleep 1; seq 501 1000")
        // Read (without acknowledging) until the first half is in, then lose the connection.
        var seen: [Record] = []
        while !String(decoding: seen.filter { $0.kind == .stdout }.flatMap(\.body), as: UTF8.self).hasSuffix("500\n") {
            let frame = try first.nextFrame(what: "the first half of the output") { $0.type == .record && $0.channel == 1 }
            seen.append(try Record.decode(frame.payload))
        }
        try Processes.kill9(try XCTUnwrap(host.subsystemPIDs().first))
        try first.waitForExit(timeout: 10)

        let second = try connect()
        let attached = try second.attach(channel: 1, instanceID: session.instanceID, receive: true)
        XCTAssertEqual(attached.ackedSeq, 0, "nothing was acknowledged")
        let replayed = try second.collect(channel: 1, commandID: commandID, timeout: 20)
        XCTAssertEqual(replayed.exitStatus, 0)

        // What the client holds: everything it saw, plus the replay minus repeats.
        let lastSeen = seen.last?.seq ?? 0
        let all = seen + replayed.records.filter { $0.seq > lastSeen }
        XCTAssertEqual(all.map(\.seq), Array(1...UInt64(all.count)), "one record per sequence number, in order")
        let stdout = String(decoding: all.filter { $0.kind == .stdout }.flatMap(\.body), as: UTF8.self)
        XCTAssertEqual(stdout, (1...1000).map { "\($0)\n" }.joined())
        XCTAssertEqual(replayed.stdoutText, stdout, "the replay alone holds the whole command")
    }

    func testRunningCommandOutlivesARegistryCrash() throws {
        let client = try connect()
        _ = try openSession(client, name: "steady")
        let commandID = try client.startCommand(channel: 1, script: "sleep 1; echo done")
        try Processes.kill9(try XCTUnwrap(host.registryPID()))
        let result = try client.collect(channel: 1, commandID: commandID, timeout: 10)
        XCTAssertEqual(result.stdoutText, "done\n")
        XCTAssertEqual(try run(client, "echo still here"), "still here\n")
    }

    func testKilledRegistryLosesNoSession() throws {
        let first = try connect()
        let one = try openSession(first, name: "one", channel: 1)
        let two = try openSession(first, name: "two", channel: 2)
        try run(first, channel: 1, "x=41")
        try run(first, channel: 2, "y=7")
        let runspacesBefore = host.runspacePIDs()
        XCTAssertEqual(runspacesBefore.count, 2)

        let registry = try XCTUnwrap(host.registryPID(), "a registry runs once a session exists")
        try Processes.kill9(registry)
        try Processes.waitForExit(registry)

        let second = try connect()
        let listed = try second.listSessions()
        XCTAssertEqual(Set(listed.map(\.instanceID)), [one.instanceID, two.instanceID])
        XCTAssertTrue(listed.allSatisfy { $0.state == .running }, "states: \(listed.map { "\($0.name): \($0.state) \($0.reason ?? "")" })")
        XCTAssertEqual(host.runspacePIDs(), runspacesBefore, "the same runspaces, re-adopted, not restarted")
        _ = try second.attach(channel: 1, instanceID: one.instanceID)
        _ = try second.attach(channel: 2, instanceID: two.instanceID)
        XCTAssertEqual(try run(second, channel: 1, "echo $x"), "41\n")
        XCTAssertEqual(try run(second, channel: 2, "echo $y"), "7\n")
        XCTAssertEqual(host.registryPIDs().count, 1)
    }

    func testKilledInterpreterBreaksOnlyItsSession() throws {
        let client = try connect()
        let doomed = try openSession(client, name: "doomed", channel: 1)
        let healthy = try openSession(client, name: "healthy", channel: 2)
        try run(client, channel: 1, "true")
        try run(client, channel: 2, "z=5")

        let runspace = try XCTUnwrap(host.runspacePID(instanceID: doomed.instanceID) ?? doomed.runspacePID,
                                     "runspace of \(doomed.instanceID) among \(host.tetherProcesses().map(\.arguments))")
        let bash = try XCTUnwrap(host.interpreterPID(ofRunspace: runspace), "bash under runspace \(runspace)")
        try Processes.kill9(bash)

        var broken: SessionInfo?
        try eventually("session \(doomed.instanceID) listed as broken") {
            broken = try client.session(doomed.instanceID)
            return broken?.state == .broken
        }
        let reason = try XCTUnwrap(broken?.reason, "a broken session says why")
        XCTAssertFalse(reason.isEmpty)

        XCTAssertEqual(try client.session(healthy.instanceID).state, .running)
        XCTAssertEqual(try run(client, channel: 2, "echo $z"), "5\n")
    }

    func testSimultaneousFirstConnectionsStartExactlyOneRegistry() throws {
        XCTAssertNil(host.registryPID())
        // Start every ssh before any hello, so the subsystems race for the registry.
        let clients = try (0..<4).map { _ in try connect(clientID: UUID().uuidString.lowercased(), hello: false) }
        for client in clients { try client.sendRaw(Frame(type: .hello, channel: 0, payload: Hello(role: .client, clientID: client.clientID, clientHost: "racer").payload()).encoded()) }
        let ids = try clients.map { try $0.sendRequest(.list(SessionFilter())) }
        for (client, id) in zip(clients, ids) {
            let hello = try client.nextFrame(what: "the host's hello") { $0.type == .hello || $0.type == .error }
            XCTAssertEqual(hello.type, .hello)
            let response = try client.awaitResponse(channel: 0, id: id)
            guard case .sessions = response else { return XCTFail("list answered \(response)") }
        }
        XCTAssertEqual(host.registryPIDs().count, 1, "registries: \(host.registryPIDs())")
        // And that one registry serves them all.
        let session = try clients[0].createSession(name: "shared")
        XCTAssertEqual(try clients[3].listSessions().map(\.instanceID), [session.instanceID])
        XCTAssertEqual(host.registryPIDs().count, 1)
    }
}
