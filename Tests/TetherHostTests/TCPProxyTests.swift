import XCTest
import Glibc
import TetherIO
import TetherProtocol
import TetherTestSupport

/// The fault-injection proxy itself, in front of a real sshd: it forwards both ways and
/// counts, `cut` resets both ends, `stall` holds every byte until `resume`, and
/// `setRefuseNew` closes the port for new connections only.
///
/// Traffic is OpenSSH's `echo` subsystem (/bin/cat) through the proxy, driven by a
/// ProtocolTestClient without hello: a frame sent comes back as the same frame. Raw TCP
/// sockets show what the kernel reports (the SSH banner, ECONNRESET, ECONNREFUSED).
final class TCPProxyTests: HostTestCase {
    private var proxy: TCPProxy!
    private var echoes: [ProtocolTestClient] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        proxy = try TCPProxy(targetPort: host.port)
    }

    override func tearDown() {
        if let run = testRun, run.totalFailureCount > 0 {
            for echo in echoes where !echo.stderrText.isEmpty { print("---- ssh (echo) \(echo.pid) stderr:\n\(echo.stderrText)") }
        }
        echoes.forEach { $0.kill() }
        echoes.removeAll()
        proxy?.stop()
        proxy = nil
        super.tearDown()
    }

    func testForwardsBothWaysAndCountsBytes() throws {
        let raw = try RawConnection(port: proxy.port)
        XCTAssertTrue(try raw.read().hasPrefix("SSH-2.0-OpenSSH"), "sshd's banner, through the proxy")
        raw.close()

        let echo = try openEcho()
        try roundTrip(echo, "through the proxy")
        let before = proxy.statistics
        XCTAssertEqual(before.accepted, 2)
        XCTAssertGreaterThan(before.bytesToTarget, 0)
        XCTAssertGreaterThan(before.bytesFromTarget, 0)

        // 1 MiB each way in one frame: backpressure through the proxy, nothing lost.
        let big = Frame(type: .stdinData, channel: 7, payload: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try echo.send(big)
        XCTAssertEqual(try echo.readFrame(timeout: 20), big)
        let after = proxy.statistics
        XCTAssertGreaterThan(after.bytesToTarget - before.bytesToTarget, 1 << 20, "encrypted, so a bit more than the payload")
        XCTAssertGreaterThan(after.bytesFromTarget - before.bytesFromTarget, 1 << 20)

        echo.close()
        XCTAssertEqual(try echo.waitForExit(), .exited(0), echo.stderrText)
        try eventually("both connections closed through the proxy") { proxy.statistics.open == 0 }
    }

    func testCutResetsBothEnds() throws {
        let raw = try RawConnection(port: proxy.port)
        _ = try raw.read()  // the banner: the target side is connected
        let echo = try openEcho()
        try roundTrip(echo, "before the cut")
        XCTAssertEqual(proxy.statistics.open, 2)

        proxy.cut()
        XCTAssertEqual(proxy.statistics.open, 0, "cut returns once the connections are gone")
        XCTAssertEqual(proxy.statistics.cut, 2)

        // The client end: a reset, not an orderly end of file.
        XCTAssertThrowsError(try raw.read()) { error in
            XCTAssertEqual((error as? SystemError)?.errno, ECONNRESET, "\(error)")
        }
        raw.close()
        let status = try echo.waitForExit(timeout: 10)
        XCTAssertEqual(status, .exited(255), "ssh fails when its connection is reset")
        // ssh reports the RST on its next read or write, whichever comes first.
        XCTAssertTrue(echo.stderrText.contains("reset by peer") || echo.stderrText.contains("Broken pipe"), "ssh stderr: \(echo.stderrText)")
        // The target end: sshd's side of the connection was reset too.
        try eventually("sshd logs the reset") { host.sshdLog.contains("Connection reset by peer") }

        // The proxy itself goes on.
        let again = try openEcho()
        try roundTrip(again, "after the cut")
    }

    func testStallHoldsEveryByteUntilResume() throws {
        let echo = try openEcho()
        try roundTrip(echo, "before the stall")

        proxy.stall()
        let frozen = proxy.statistics
        let held = Frame(type: .stdinData, channel: 1, payload: Array("sent during the stall".utf8))
        try echo.send(held)
        // Nothing comes back while the link is frozen (a bounded wait for an absence).
        XCTAssertThrowsError(try echo.readFrame(timeout: 1)) { error in
            guard case ProtocolTestClient.ClientError.timeout = error else { return XCTFail("expected a timeout, got \(error)") }
        }
        XCTAssertEqual(proxy.statistics.bytesToTarget, frozen.bytesToTarget, "no byte forwarded during the stall")
        XCTAssertEqual(proxy.statistics.bytesFromTarget, frozen.bytesFromTarget)
        XCTAssertTrue(echo.isRunning, "a stall keeps the connection open")

        // A connection made during the stall is accepted but stalled too.
        let late = try RawConnection(port: proxy.port)
        XCTAssertThrowsError(try late.read(timeout: 0.5), "no banner through a stalled proxy")

        proxy.resume()
        XCTAssertEqual(try echo.readFrame(timeout: 10), held, "the held bytes arrive, once")
        try roundTrip(echo, "after the stall")
        XCTAssertTrue(try late.read().hasPrefix("SSH-2.0-OpenSSH"), "the late connection's banner arrives on resume")
        late.close()
        echo.close()
        XCTAssertEqual(try echo.waitForExit(), .exited(0), echo.stderrText)
    }

    func testRefuseNewClosesThePortButKeepsCurrentConnections() throws {
        let echo = try openEcho()
        try roundTrip(echo, "before refusing")

        try proxy.setRefuseNew(true)
        XCTAssertTrue(proxy.refusesNew)
        XCTAssertThrowsError(try RawConnection(port: proxy.port)) { error in
            XCTAssertEqual((error as? SystemError)?.errno, ECONNREFUSED, "\(error)")
        }
        let refused = try Processes.run("ssh", host.sshArguments(throughPort: proxy.port) + [host.destination, "true"], timeout: 20)
        XCTAssertEqual(refused.status, .exited(255))
        XCTAssertTrue(refused.stderrText.contains("Connection refused"), refused.stderrText)
        try roundTrip(echo, "while refusing new ones")

        try proxy.setRefuseNew(false)
        XCTAssertFalse(proxy.refusesNew)
        let again = try openEcho()
        try roundTrip(again, "accepting again, on the same port")
        XCTAssertEqual(proxy.statistics.accepted, 2, "the refused connections never reached the target")
    }

    // MARK: Helpers

    /// `ssh -s echo` through the proxy (no Tether hello: the echo returns what we send).
    private func openEcho() throws -> ProtocolTestClient {
        let echo = try ProtocolTestClient(fixture: host, hello: false,
                                          command: host.subsystemCommand(throughPort: proxy.port, subsystem: "echo"))
        echoes.append(echo)
        return echo
    }

    private func roundTrip(_ echo: ProtocolTestClient, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let frame = Frame(type: .stdinData, channel: 1, payload: Array(text.utf8))
        try echo.send(frame)
        XCTAssertEqual(try echo.readFrame(timeout: 20), frame, "echo of \"\(text)\"", file: file, line: line)
    }
}

/// A plain TCP client socket to 127.0.0.1, to see exactly what the kernel reports.
private final class RawConnection {
    let fd: Int32

    /// Connects (throws the SystemError of a refusal).
    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = SystemError.last("connect 127.0.0.1:\(port)")
            Glibc.close(fd)
            throw error
        }
        Descriptors.setNonBlocking(fd)
    }

    /// The next bytes as text; throws on timeout, end of file, or a socket error.
    func read(timeout: Double = 10) throws -> String {
        guard let chunk = try Descriptors.readChunk(fd, until: Deadline(secondsFromNow: timeout)) else {
            throw TestSupportError("nothing to read within \(timeout) s")
        }
        guard !chunk.isEmpty else { throw TestSupportError("end of file") }
        return String(decoding: chunk, as: UTF8.self)
    }

    func close() { Glibc.close(fd) }
}
