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

    /// The keeper's channel bookkeeping driven by sequences, not single frames: seeded
    /// random streams of attach, detach, invoke, interrupt, ack, stdin and channel errors
    /// on a few channels, each stream then closed. Whatever the order, the keeper stays
    /// responsive and, once every stream is gone, nothing stays attached on the host (the
    /// session goes idle and its 2 s idle timeout removes it). TETHER_FUZZ_SEED=N runs
    /// one more seed; a failure names its seed.
    func testRandomFrameSequencesNeverLeakAnAttachment() throws {
        XCTAssertEqual(try tether(["new", "alpha", "--name", "s", "--idle-timeout", "2"]).status, .exited(0))
        let id = try instanceID("s")
        var seeds: [UInt64] = [1, 2, 3, 4]
        if let text = ProcessInfo.processInfo.environment["TETHER_FUZZ_SEED"], let seed = UInt64(text) { seeds.append(seed) }
        for seed in seeds {
            var random = SplitMix64(seed: seed)
            let raw = try KeeperStreamClient(socket: keeperSocket, home: tetherHome, destination: "alpha",
                                             sshConfig: sshConfigPath)
            for _ in 0..<80 {
                let channel = UInt32(random.next() % 4 + 1)
                switch random.next() % 8 {
                case 0, 1: try raw.sendRequest(channel: channel, .attach(instanceID: id, force: false, receive: random.next() % 2 == 0))
                case 2: try raw.sendRequest(channel: channel, .detach)
                case 3: try raw.sendRequest(channel: channel, .invoke(InvokeRequest(script: "echo \(seed)", wait: random.next() % 2 == 0)))
                case 4: try raw.sendRequest(channel: channel, .signal(.interrupt))
                case 5: try raw.send(Frame(type: .ack, channel: channel, payload: ControlCodec.ack(random.next() % 64)))
                case 6: try raw.send(Frame(type: .stdinEOF, channel: channel))
                default: try raw.send(ControlCodec.errorFrame(channel: channel, ErrorBody(.internal, "giving up on it")))
                }
            }
            // Still answering: a ping crosses the keeper and the link after all that.
            guard case .pong = try raw.request(channel: 0, .ping) else { return XCTFail("seed \(seed): no pong") }
        }
        // Every stream is closed now: no channel may be left attached on the host.
        try eventually(timeout: 40, "the session goes idle and is removed (seeds \(seeds))") {
            (try? getJSON(["--computer", "alpha", "--name", "s"]))?.isEmpty == true
        }
    }

    /// A CLI whose stdout nobody reads (a pager not scrolled, a stopped terminal) used to
    /// pause the keeper's whole link, and every other command to that host hung. Now the
    /// host sends that CLI's channel at most its window and keeps the rest in the journal:
    /// `get` and a big invoke in another session go through meanwhile, and the stalled
    /// reader still gets every line once it reads.
    func testStalledReaderSlowsOnlyItselfOnASharedLink() throws {
        XCTAssertEqual(try tether(["new", "alpha", "--name", "stuck"]).status, .exited(0))
        XCTAssertEqual(try tether(["new", "alpha", "--name", "other"]).status, .exited(0))
        let stuck = try spawnTetherWithStuckStdout(["invoke", "--name", "stuck", "--", "seq 1 3000000"],
                                                   home: tetherHome, label: "stuck")
        try waitUntil("the stalled CLI blocks writing its stdout") { stuck.isBlockedWritingStdout }

        let listed = try tether(["get", "--computer", "alpha", "--json"], timeout: 30)
        XCTAssertEqual(listed.status, .exited(0), listed.stderrText)
        XCTAssertTrue(listed.stdoutText.contains("\"other\""), listed.stdoutText)
        let other = try tether(["invoke", "--name", "other", "--", "seq 1 1000000"], timeout: 60)
        XCTAssertEqual(other.status, .exited(0), other.stderrText)
        XCTAssertEqual(other.stdoutText, Self.numbers(1000000), "the other session's output, whole, while one reader stalls")
        XCTAssertEqual(stuck.exitStatus, nil, "the stalled CLI is still stalled")

        XCTAssertEqual(try Self.readToEnd(XCTUnwrap(stuck.stdoutPipe)), Self.numbers(3000000), "the stalled reader loses nothing")
        XCTAssertEqual(try stuck.wait(timeout: 60), .exited(0), stuck.stderrText)
    }

    /// Reads a pipe until its writer is gone.
    private static func readToEnd(_ fd: Int32) throws -> String {
        var bytes: [UInt8] = []
        let deadline = Deadline(secondsFromNow: 120)
        while let chunk = try Descriptors.readChunk(fd, until: deadline), !chunk.isEmpty { bytes += chunk }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func numbers(_ count: Int) -> String {
        var text = ""
        text.reserveCapacity(count * 8)
        for n in 1...count { text += "\(n)\n" }
        return text
    }
}

/// A small deterministic generator, so a failing sequence can be replayed by its seed.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
