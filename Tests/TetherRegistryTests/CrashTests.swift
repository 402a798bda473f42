import Glibc
import Foundation
import TetherIO
import TetherProtocol
import XCTest

/// kill -9 anything: the registry loses nothing, a dead runspace is Broken with a reason
/// and the others carry on, a subsystem's death is a dropped network.
final class CrashTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testKilledRegistryIsRestartedAndSessionsAreReadopted() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "survivor"))
        _ = try client.attach(channel: 1, session.instanceID)
        XCTAssertEqual(try client.invoke(channel: 1, "state=kept").status, 0)

        let registry = try XCTUnwrap(host.registryPIDs().first)
        host.killAndWait(registry)

        let next = try host.subsystem()
        let listed = try XCTUnwrap(try next.session(session.instanceID))
        XCTAssertEqual(listed.state, .running)
        XCTAssertEqual(listed.holder?.clientID, client.clientID)
        XCTAssertNotEqual(host.registryPIDs().first, registry)
        XCTAssertEqual(host.registryPIDs().count, 1)
        XCTAssertTrue(host.log().contains("re-adopted its runspace host"), host.log())

        // The old connection's attachment kept working throughout.
        XCTAssertEqual(try client.invoke(channel: 1, "echo $state").stdout, "kept\n")
        // And a new attachment works through the new registry.
        _ = try next.attach(channel: 1, session.instanceID)
        XCTAssertEqual(try next.invoke(channel: 1, "echo again $state").stdout, "again kept\n")
    }

    func testKilledRunspaceMarksOnlyItsSessionBroken() throws {
        let client = try host.subsystem()
        let victim = try client.create(CreateRequest(name: "victim"))
        let bystander = try client.create(CreateRequest(name: "bystander"))
        _ = try client.attach(channel: 1, victim.instanceID)
        _ = try client.attach(channel: 2, bystander.instanceID)

        host.killAndWait(try XCTUnwrap(victim.runspacePID))

        // The attached channel is told its runspace went away.
        let error = try XCTUnwrap(try client.nextFrame(what: "the error on channel 1") { $0.channel == 1 && $0.type == .error })
        let body = try WireJSON.decode(ErrorBody.self, from: error.payload)
        XCTAssertTrue(body.message.contains("runspace went away"), body.message)

        var broken: SessionInfo?
        waitUntil(timeout: 10, "the victim to show as broken") {
            broken = try? client.session(victim.instanceID)
            return broken?.state == .broken
        }
        XCTAssertEqual(broken?.reason, "runspace host died unexpectedly")
        XCTAssertEqual(try client.session(bystander.instanceID)?.state, .running)
        XCTAssertEqual(try client.invoke(channel: 2, "echo fine").stdout, "fine\n")

        // A broken session can't be claimed, but says why; it can be removed.
        let claim = try XCTUnwrap(try client.request(.claim(instanceID: victim.instanceID, force: true)).failure)
        XCTAssertEqual(claim.code, .sessionBroken)
        XCTAssertTrue(claim.message.contains("runspace host died unexpectedly"), claim.message)
        try client.remove(victim.instanceID)
        XCTAssertEqual(try client.list().map(\.instanceID), [bystander.instanceID])
    }

    func testRunspaceGoneWhileNoRegistryWatchedIsBrokenOnRestart() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "rebooted"))
        let other = try client.create(CreateRequest(name: "fine"))
        let registry = try XCTUnwrap(host.registryPIDs().first)
        host.killAndWait(registry)
        host.killAndWait(try XCTUnwrap(session.runspacePID))
        // As after a reboot, the runtime directory lost the socket too.
        unlink(host.paths.runspaceSocket(session.instanceID))

        let next = try host.subsystem()
        let listed = try XCTUnwrap(try next.session(session.instanceID))
        XCTAssertEqual(listed.state, .broken)
        XCTAssertEqual(listed.reason, "runspace host is gone (it was killed, or the host rebooted)")
        XCTAssertEqual(try next.session(other.instanceID)?.state, .running)
    }

    func testRunspaceOfAnotherReleaseIsBrokenWithTheReasonNotDied() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "upgraded"))
        let registry = try XCTUnwrap(host.registryPIDs().first)
        host.killAndWait(registry)
        host.killAndWait(try XCTUnwrap(session.runspacePID))
        // In its place, a runspace of an older release: it refuses our hello's version.
        let path = host.paths.runspaceSocket(session.instanceID)
        unlink(path)
        let listener = try UnixSocket.listen(path: path)
        let old = Thread {
            // Blocking accept on the test's own thread; one connection is all it serves.
            var flags = fcntl(listener, F_GETFL); flags &= ~O_NONBLOCK; _ = fcntl(listener, F_SETFL, flags)
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return }
            var hello = [UInt8](repeating: 0, count: 4096)
            _ = read(fd, &hello, hello.count)
            let refusal = ControlCodec.errorFrame(channel: 0, ErrorBody(.versionMismatch,
                "protocol version mismatch: peer speaks \(tetherProtocolVersion), this side speaks 1")).encoded()
            _ = refusal.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        old.start()
        defer { close(listener) }

        let next = try host.subsystem()
        var listed: SessionInfo?
        waitUntil(timeout: 10, "the session to show as broken") {
            listed = try? next.session(session.instanceID)
            return listed?.state == .broken
        }
        let reason = try XCTUnwrap(listed?.reason)
        XCTAssertTrue(reason.contains("shares no protocol version") && reason.contains("speaks 1"), reason)
        XCTAssertTrue(reason.contains("tether remove"), reason)
    }

    func testARegistryWhoseBinaryWasReplacedStillStartsItsOwnRunspaces() throws {
        // Run from a copy that can be replaced, as an upgrade or a rebuild replaces the
        // installed file while the registry keeps running.
        let copy = host.root + "/tether-subsystem"
        try FileManager.default.copyItem(atPath: TestHost.binary, toPath: copy)
        host.binary = copy
        let client = try host.subsystem()
        _ = try client.create(CreateRequest(name: "before"))
        // A new file at that path (a new inode, as install(1) and package managers do),
        // one that can't be a runspace host.
        XCTAssertEqual(unlink(copy), 0)
        try "#!/bin/sh\nexit 3\n".write(toFile: copy, atomically: false, encoding: .utf8)
        XCTAssertEqual(chmod(copy, 0o755), 0)

        let after = try client.create(CreateRequest(name: "after"))
        XCTAssertEqual(after.state, .running)
        _ = try client.attach(channel: 1, after.instanceID)
        XCTAssertEqual(try client.invoke(channel: 1, "echo alive").stdout, "alive\n")
    }

    func testKilledSubsystemHurtsNoSession() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "calm"))
        _ = try client.attach(channel: 1, session.instanceID)
        XCTAssertEqual(try client.invoke(channel: 1, "v=1").status, 0)
        host.killAndWait(client.pid)

        let next = try host.subsystem()
        XCTAssertEqual(try next.session(session.instanceID)?.state, .running)
        _ = try next.attach(channel: 1, session.instanceID)
        XCTAssertEqual(try next.invoke(channel: 1, "echo $v").stdout, "1\n")
    }
}
