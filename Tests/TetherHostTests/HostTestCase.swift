import XCTest
import Glibc
import TetherProtocol
import TetherTestSupport

/// Base of the host end-to-end tests: every test gets its own real sshd (its own
/// "computer", registry included) and the connections it opens are dropped afterwards.
/// When a test fails, the tails of sshd's log and the host log are printed.
class HostTestCase: XCTestCase {
    var host: SSHDFixture!
    /// One client id per test: connections made with it are the same client reconnecting.
    let clientID = UUID().uuidString.lowercased()
    private var clients: [ProtocolTestClient] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        host = try SSHDFixture()
    }

    override func tearDown() {
        // (hasSucceeded is false until the run stops, which is after tearDown.)
        if let run = testRun, run.totalFailureCount > 0, let host {
            print("---- sshd log (\(host.sshdLogPath)), last lines:\n\(tail(host.sshdLog, 30))")
            print("---- host log, last lines:\n\(tail(host.hostLog, 40))")
            for client in clients where !client.stderrText.isEmpty {
                print("---- ssh client \(client.pid) stderr:\n\(tail(client.stderrText, 10))")
            }
        }
        clients.forEach { $0.kill() }
        clients.removeAll()
        host?.stop()
        host = nil
        super.tearDown()
    }

    /// A new `ssh -s … tether` connection (hello done unless `hello` is false).
    func connect(clientID: String? = nil, hello: Bool = true) throws -> ProtocolTestClient {
        let client = try ProtocolTestClient(fixture: host, clientID: clientID ?? self.clientID, hello: hello)
        clients.append(client)
        return client
    }

    /// Creates a session and attaches `channel` to it.
    func openSession(_ client: ProtocolTestClient, name: String, channel: UInt32 = 1) throws -> SessionInfo {
        let session = try client.createSession(name: name)
        XCTAssertEqual(session.state, .running)
        XCTAssertEqual(session.name, name)
        _ = try client.attach(channel: channel, instanceID: session.instanceID)
        return session
    }

    /// Runs `script` and requires exit status 0 and no stderr; returns stdout.
    @discardableResult
    func run(_ client: ProtocolTestClient, channel: UInt32 = 1, _ script: String,
             file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try client.invoke(channel: channel, script: script)
        XCTAssertEqual(result.exitStatus, 0, "exit status of `\(script)`; stderr: \(result.stderrText)", file: file, line: line)
        XCTAssertEqual(result.stderrText, "", "stderr of `\(script)`", file: file, line: line)
        return result.stdoutText
    }

    /// Retries `condition` until it holds, for conditions the host reaches asynchronously
    /// (a status the registry learns from a runspace). Test-only: product code never polls.
    func eventually(timeout: Double = 10, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Deadline(secondsFromNow: timeout)
        var lastError: Error?
        while true {
            do {
                if try condition() { return }
            } catch {
                lastError = error
            }
            guard !deadline.hasPassed else {
                throw TestSupportError("\(what) did not happen within \(timeout) s\(lastError.map { "; last error: \($0)" } ?? "")")
            }
            usleep(50_000)
        }
    }

    private func tail(_ text: String, _ lines: Int) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}
