import XCTest
import Foundation
import Glibc
@testable import TetherClient
import TetherIO
import TetherProtocol
import TetherTestSupport

/// Cancelling a Swift `Task` that awaits the library cancels what it waits for: the
/// awaiting call throws `CancellationError` at once, the channel lets go of the host (no
/// attachment left behind: a 2-second idle timeout then removes the session), and the
/// output not consumed stays on the host for the next `receive` — nothing lost, nothing
/// twice.
final class LibraryCancellationTests: TwoClientTestCase {
    static let script = "for i in $(seq 1 30); do echo \"line $i\"; sleep 0.05; done; (exit 4)"
    static let allLines = (1...30).map { "line \($0)\n" }.joined()

    private func client() throws -> TetherClient {
        try TetherClient(home: ClientHome(directory: tetherHome), keeper: .never)
    }

    /// Text a cancelled task got before it was cancelled.
    private final class Seen: @unchecked Sendable {
        private let lock = Lock()
        private var text = ""
        func add(_ bytes: [UInt8]) { lock.withLock { text += String(decoding: bytes, as: UTF8.self) } }
        var value: String { lock.withLock { text } }
    }

    /// Reads `output` in a task, cancels it after the first stdout chunk, and returns what
    /// it got; the task must end with `CancellationError`.
    private func readThenCancel(_ output: OutputSequence) async throws -> String {
        let seen = Seen()
        let (firstChunk, firstChunkArrived) = AsyncStream<Void>.makeStream()
        let reader = Task {
            for try await chunk in output {
                if case .stdout(let bytes) = chunk { seen.add(bytes); firstChunkArrived.yield() }
            }
        }
        for await _ in firstChunk { break }
        reader.cancel()
        do {
            try await reader.value
            XCTFail("the reader ended without being cancelled: \(seen.value)")
        } catch is CancellationError {
        }
        return seen.value
    }

    private func waitForNoChannel(_ host: RemoteHost) async throws {
        let deadline = Date().addingTimeInterval(10)
        while await host.openChannelCount > 0 {
            guard Date() < deadline else { return XCTFail("the cancelled channel is still open") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    private func waitUntilRemoved(_ host: RemoteHost, name: String) async throws {
        let deadline = Date().addingTimeInterval(40)
        while try await !host.sessions(filter: SessionFilter(name: name)).isEmpty {
            guard Date() < deadline else { return XCTFail("session \(name) is still there: something stays attached") }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    func testCancellingAnInvocationsOutputDetachesAndTheRestIsReceived() async throws {
        let client = try client()
        let host = try await client.connect("alpha", options: ConnectionOptions(configFile: sshConfigPath))
        let session = try await host.createSession(name: "c", idleTimeout: 2)
        let run = try await session.invoke(Self.script)
        let before = try await readThenCancel(run.output)
        XCTAssertTrue(before.hasPrefix("line 1\n"), before)
        // The channel closes as soon as the host answers its detach.
        try await waitForNoChannel(host)

        // Another handle: the rest of the command's output, exactly once, and its status.
        let rest = try await host.session(instanceID: session.instanceID).receive()
        var after = ""
        for try await chunk in rest.output { if case .stdout(let bytes) = chunk { after += String(decoding: bytes, as: UTF8.self) } }
        XCTAssertEqual(before + after, Self.allLines)
        let status = try await rest.exitStatus
        XCTAssertEqual(status, 4)

        // The session works, and once this handle lets go nothing is attached: the idle
        // timeout removes it (the cancelled invocation's attachment is gone on the host).
        let again = host.session(instanceID: session.instanceID)
        let echoed = try await again.invoke("echo after").collect()
        XCTAssertEqual(String(decoding: echoed.stdout, as: UTF8.self), "after\n")
        try await again.detach()
        try await waitUntilRemoved(host, name: "c")
        await host.close()
    }

    func testCancellingAReceiveDetachesAndTheNextReceiveGetsTheRest() async throws {
        let client = try client()
        let host = try await client.connect("alpha", options: ConnectionOptions(configFile: sshConfigPath))
        let session = try await host.createSession(name: "r", idleTimeout: 2)
        _ = try await session.invoke(Self.script)
        try await session.detach()  // the command goes on; its output waits on the host

        let first = try await host.session(instanceID: session.instanceID).receive()
        let before = try await readThenCancel(first.output)
        try await waitForNoChannel(host)
        let second = try await host.session(instanceID: session.instanceID).receive()
        var after = ""
        for try await chunk in second.output { if case .stdout(let bytes) = chunk { after += String(decoding: bytes, as: UTF8.self) } }
        XCTAssertEqual(before + after, Self.allLines)
        let status = try await second.exitStatus
        XCTAssertEqual(status, 4)
        try await waitUntilRemoved(host, name: "r")
        await host.close()
    }

    func testCancellingAConnectToAStalledLinkEndsItAtOnce() async throws {
        let proxy = try TCPProxy(targetPort: alpha.port)
        defer { proxy.stop() }
        proxy.stall()  // accepted, but not a byte of sshd's banner comes back
        let config = alpha.configuration.sshConfig.replacingOccurrences(of: "Port \(alpha.port)\n", with: "Port \(proxy.port)\n")
            + "    HostKeyAlias [127.0.0.1]:\(alpha.port)\n"
        let stalledConfig = workDirectory + "/ssh_config_stalled"
        try writeFile(stalledConfig, config)
        let client = try client()
        let connecting = Task { try await client.connect("alpha", options: ConnectionOptions(configFile: stalledConfig)) }
        let accepted = Date().addingTimeInterval(20)
        while proxy.statistics.accepted == 0 && Date() < accepted { try await Task.sleep(nanoseconds: 20_000_000) }
        XCTAssertEqual(proxy.statistics.accepted, 1)
        let cancelledAt = Date()
        connecting.cancel()
        do {
            let host = try await connecting.value
            await host.close()
            XCTFail("a connect over a stalled link succeeded")
        } catch is CancellationError {
        }
        // Far sooner than the handshake's own 30 s timeout.
        XCTAssertLessThan(Date().timeIntervalSince(cancelledAt), 10)
        // The socket was closed: once the link moves again, the proxy sees it end.
        proxy.resume()
        let closed = Date().addingTimeInterval(20)
        while proxy.statistics.open > 0 && Date() < closed { try await Task.sleep(nanoseconds: 20_000_000) }
        XCTAssertEqual(proxy.statistics.open, 0, "the cancelled connect left its socket open")
    }
}
