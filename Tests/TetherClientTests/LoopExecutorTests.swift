import XCTest
import TetherClient
import TetherTestSupport

/// Code awaiting the library from a task that runs on the client's own loop thread
/// (`TetherClient.taskExecutor`): every call completes without the usual thread hop, and
/// nothing deadlocks — the loop keeps serving the connection while the task waits.
final class LoopExecutorTests: TwoClientTestCase {
    func testCommandsAwaitedOnTheLoopRunInOrderAndKeepState() async throws {
        let client = try TetherClient(home: ClientHome(directory: tetherHome), keeper: .never)
        let outputs: [String] = try await withTaskExecutorPreference(client.taskExecutor) {
            let host = try await client.connect("alpha", options: ConnectionOptions(configFile: sshConfigPath))
            let session = try await host.createSession(name: "on-loop")
            var outputs: [String] = []
            for _ in 0..<50 {
                let result = try await session.invoke("n=$((n + 1)); echo $n; echo err$n >&2").collect()
                XCTAssertEqual(result.exitStatus, 0)
                XCTAssertEqual(String(decoding: result.stderr, as: UTF8.self), "err\(outputs.count + 1)\n")
                outputs.append(String(decoding: result.stdout, as: UTF8.self))
            }
            // A command with real output size and a non-zero status, on the same path.
            let big = try await session.invoke("head -c 3000000 /dev/zero; (exit 3)").collect()
            XCTAssertEqual(big.stdout.count, 3_000_000)
            XCTAssertEqual(big.exitStatus, 3)
            await host.close()
            return outputs
        }
        XCTAssertEqual(outputs, (1...50).map { "\($0)\n" })
    }
}
