import XCTest
import Foundation
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport
@testable import TetherClient

/// The keeper against local clients that stall or misbehave: per-channel bookkeeping and
/// per-stream flow control. Real sshd, real keeper, raw frames where a CLI wouldn't do.
final class KeeperChannelTests: TwoClientTestCase {
    private var keeperSocket: String {
        KeeperControl.socketPath(home: ClientHome(directory: tetherHome), executable: KeeperPaths.absolute(tetherPath))
    }

    override func tearDown() {
        let keepers = ProcessTable.processes(mentioning: keeperSocket).map(\.pid)
        Processes.killAll(keepers)
        let base = String(keeperSocket.dropLast(".sock".count))
        for suffix in [".sock", ".lock", ".log"] { unlink(base + suffix) }
        super.tearDown()
    }

    private func instanceID(_ name: String) throws -> String {
        try XCTUnwrap(try remoteSession(name, home: tetherHome)["instanceId"] as? String)
    }

    /// Attaching twice on one channel, and detaching a channel never attached and then
    /// attaching it before the answer, used to leave the keeper's routes and the host's
    /// attachments apart: the host kept a channel attached that the keeper had forgotten,
    /// so the session never went idle while the link lived. Each request is judged by the
    /// channel's state now, and when the stream ends every channel it opened is detached.
    func testMisbehavingLocalClientCannotLeakAHostAttachment() throws {
        XCTAssertEqual(try tether(["new", "alpha", "--name", "s", "--idle-timeout", "2"]).status, .exited(0))
        let id = try instanceID("s")
        var raw: KeeperStreamClient? = try KeeperStreamClient(socket: keeperSocket, home: tetherHome,
                                                              destination: "alpha", sshConfig: sshConfigPath)
        let attach = Request.attach(instanceID: id, force: false, receive: false)

        guard case .attached = try raw!.request(channel: 1, attach) else { return XCTFail("the first attach works") }
        guard case .failure(let twice) = try raw!.request(channel: 1, attach) else {
            return XCTFail("a second attach on a channel is refused")
        }
        XCTAssertEqual(twice.code, .badRequest, twice.message)

        let detachID = try raw!.sendRequest(channel: 2, .detach)
        let attachID = try raw!.sendRequest(channel: 2, attach)
        guard case .failure(let unattached) = try raw!.awaitResponse(channel: 2, id: detachID) else {
            return XCTFail("detaching a channel that was never attached is refused")
        }
        XCTAssertEqual(unattached.code, .notAttached, unattached.message)
        guard case .attached = try raw!.awaitResponse(channel: 2, id: attachID) else {
            return XCTFail("the attach after it works")
        }
        // The channel still works as attached.
        let run = try raw!.sendRequest(channel: 2, .invoke(InvokeRequest(script: "echo on two")))
        guard case .started = try raw!.awaitResponse(channel: 2, id: run) else { return XCTFail("invoke on channel 2") }

        raw = nil  // the stream ends: a disconnect
        // Nothing attached and nothing running: the 2 s idle timeout removes the session.
        try eventually(timeout: 40, "the session goes idle and is removed") {
            (try? getJSON(["--computer", "alpha", "--name", "s"]))?.isEmpty == true
        }
    }
}
