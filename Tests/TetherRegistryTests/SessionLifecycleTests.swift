import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// create → list → attach/invoke → detach → remove, through the real subsystem, registry,
/// runspace host and bash.
final class SessionLifecycleTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testCreateListInvokeRemove() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "deploy"))
        XCTAssertEqual(session.name, "deploy")
        XCTAssertEqual(session.configuration, "bash")
        XCTAssertEqual(session.state, .running)
        XCTAssertEqual(session.idleTimeout, 7200)
        XCTAssertEqual(session.outputBuffering, .block)
        XCTAssertEqual(session.bufferLimit, 16 << 20)
        XCTAssertEqual(session.holder?.clientID, client.clientID)
        XCTAssertEqual(session.holder?.clientHost, client.clientHost)
        let pid = try XCTUnwrap(session.runspacePID)
        XCTAssertEqual(host.runspacePIDs(), [pid])

        let unnamed = try client.create()
        XCTAssertTrue(unnamed.name.hasPrefix("Session"), unnamed.name)

        XCTAssertEqual(try client.list().map(\.name), ["deploy", unnamed.name])
        XCTAssertEqual(try client.list(SessionFilter(name: "dep*")).map(\.instanceID), [session.instanceID])
        XCTAssertEqual(try client.list(SessionFilter(name: "Session?")).map(\.instanceID), [unnamed.instanceID])
        XCTAssertEqual(try client.list(SessionFilter(state: .broken)), [])
        XCTAssertEqual(try client.list(SessionFilter(configuration: "bash")).count, 2)

        let attached = try client.attach(channel: 1, session.instanceID)
        XCTAssertEqual(attached.session.instanceID, session.instanceID)
        XCTAssertEqual(attached.session.holder?.clientID, client.clientID)
        XCTAssertFalse(attached.tookOver)
        XCTAssertEqual(try client.invoke(channel: 1, "x=41; echo hello").stdout, "hello\n")
        XCTAssertEqual(try client.invoke(channel: 1, "echo $((x+1)); exit_code_probe() { return 3; }; exit_code_probe").stdout, "42\n")
        XCTAssertEqual(try client.request(channel: 1, .detach), .done)

        // A duplicate name is refused while the first one runs.
        let duplicate = try client.request(.create(CreateRequest(name: "deploy")))
        XCTAssertEqual(duplicate.failure?.code, .badRequest)
        XCTAssertTrue(duplicate.failure?.message.contains("already exists") ?? false)

        try client.remove(session.instanceID)
        XCTAssertNil(try client.session(session.instanceID))
        waitUntil(timeout: 15, "the removed runspace to exit") { !self.host.runspacePIDs().contains(pid) }
        XCTAssertEqual(try client.list().map(\.instanceID), [unnamed.instanceID])
    }

    func testSessionsOutliveTheConnectionAndTheTableIsDurable() throws {
        let first = try host.subsystem()
        let session = try first.create(CreateRequest(name: "keep", idleTimeout: 600, outputBuffering: .drop, bufferLimit: 1 << 20))
        XCTAssertEqual(try first.attach(channel: 5, session.instanceID).session.instanceID, session.instanceID)
        XCTAssertEqual(try first.invoke(channel: 5, "cd /tmp; kept=yes").status, 0)
        first.closeInput()
        XCTAssertEqual(try first.waitForExit(), .exited(0))

        let second = try host.subsystem()
        let listed = try XCTUnwrap(try second.session(session.instanceID))
        XCTAssertEqual(listed.state, .running)
        XCTAssertEqual(listed.idleTimeout, 600)
        XCTAssertEqual(listed.outputBuffering, .drop)
        XCTAssertEqual(listed.bufferLimit, 1 << 20)
        _ = try second.attach(channel: 2, session.instanceID)
        XCTAssertEqual(try second.invoke(channel: 2, "echo $kept $PWD").stdout, "yes /tmp\n")

        let table = String(decoding: readWholeFile(host.paths.sessionTableFile) ?? [], as: UTF8.self)
        XCTAssertTrue(table.contains(session.instanceID), table)
        XCTAssertTrue(table.contains("\"keep\""), table)
    }

    func testReleaseChangesSettingsAndFreesTheSession() throws {
        host.environment["TETHER_MIN_IDLE_TIMEOUT"] = "1"
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "rel"))
        let released = try client.request(.release(instanceID: session.instanceID, idleTimeout: 900, outputBuffering: .drop))
        guard case .session(let info) = released else { return XCTFail("\(released)") }
        XCTAssertNil(info.holder)
        XCTAssertEqual(info.idleTimeout, 900)
        XCTAssertEqual(info.outputBuffering, .drop)
        // Releasing a free session is a no-op.
        guard case .session(let again) = try client.request(.release(instanceID: session.instanceID, idleTimeout: nil, outputBuffering: nil)) else {
            return XCTFail("second release failed")
        }
        XCTAssertNil(again.holder)
        let tooShort = try client.request(.release(instanceID: session.instanceID, idleTimeout: 0.5, outputBuffering: nil))
        XCTAssertEqual(tooShort.failure?.code, .badRequest)
        // Still usable after the buffering change reached the runspace.
        _ = try client.attach(channel: 1, session.instanceID)
        XCTAssertEqual(try client.invoke(channel: 1, "echo ok").stdout, "ok\n")
    }

    func testRelativeDirectoriesAreResolvedOnce() throws {
        let client = try StdioSubsystem(binary: TestHost.binary, arguments: ["--runtime-dir", "run", "--state-dir", "state"],
                                        environment: [:], clientID: "rel", clientHost: "rel", workingDirectory: host.root)
        try client.hello()
        let session = try client.create(CreateRequest(name: "relative"))
        _ = try client.attach(channel: 1, session.instanceID)
        XCTAssertEqual(try client.invoke(channel: 1, "echo ok").stdout, "ok\n")
        XCTAssertEqual(access(host.paths.registrySocket, F_OK), 0)
        XCTAssertEqual(access(host.paths.runspaceSocket(session.instanceID), F_OK), 0)
    }

    func testDetachedChannelCanBeReused() throws {
        let client = try host.subsystem()
        let a = try client.create(CreateRequest(name: "a"))
        let b = try client.create(CreateRequest(name: "b"))
        _ = try client.attach(channel: 1, a.instanceID)
        let twice = try client.request(channel: 1, .attach(instanceID: b.instanceID, force: false, receive: false))
        XCTAssertEqual(twice.failure?.code, .badRequest)
        XCTAssertEqual(try client.invoke(channel: 1, "echo a").stdout, "a\n")
        XCTAssertEqual(try client.request(channel: 1, .detach), .done)
        _ = try client.attach(channel: 1, b.instanceID)
        XCTAssertEqual(try client.invoke(channel: 1, "echo b").stdout, "b\n")
        // Two channels, two sessions, one connection.
        _ = try client.attach(channel: 2, a.instanceID)
        XCTAssertEqual(try client.invoke(channel: 2, "echo a2").stdout, "a2\n")
    }
}
