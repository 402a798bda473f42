import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// Output and stdin through the multiplexer: nothing lost, memory bounded while the
/// client doesn't read.
final class StreamingTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testLargeOutputToASlowClientIsCompleteAndBounded() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "bulk"))
        _ = try client.attach(channel: 1, session.instanceID)
        let size = 40_000_000
        var peakKiB = 0
        let result = try client.invokeCollecting(channel: 1, "head -c \(size) /dev/zero | tr '\\0' 'x'", timeout: 120) {
            // Don't read for a while: the pipes, the subsystem's queue and the runspace's
            // journal fill up, and everything upstream must stop rather than buffer.
            usleep(2_000_000)
            peakKiB = residentKiB(client.pid)
        }
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout.count, size)
        XCTAssertTrue(result.stdout.allSatisfy { $0 == UInt8(ascii: "x") })
        print("subsystem resident while backed up: \(peakKiB) KiB")
        XCTAssertLessThan(peakKiB, 64 * 1024, "the subsystem held \(peakKiB) KiB while the client wasn't reading")
    }

    func testStdinReachesTheCommand() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "stdin"))
        _ = try client.attach(channel: 7, session.instanceID)
        let input = Array((0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let result = try client.invokeCollecting(channel: 7, "cat", stdin: input)
        XCTAssertEqual(result.stdout, input)
    }

    func testSessionClosedByItsOwnExitStaysReadable() throws {
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "quitter"))
        _ = try client.attach(channel: 1, session.instanceID)
        _ = try? client.invoke(channel: 1, "echo bye; trap - EXIT; builtin exit 3")
        var closed: SessionInfo?
        waitUntil(timeout: 10, "the session to show as closed") {
            closed = try? client.session(session.instanceID)
            return closed?.state == .closed
        }
        XCTAssertEqual(closed?.exitCode, 3)
        XCTAssertTrue(closed?.reason?.contains("3") ?? false, "\(closed?.reason ?? "no reason")")
        try client.remove(session.instanceID)
        XCTAssertNil(try client.session(session.instanceID))
    }
}

/// Resident memory of a process, from /proc.
func residentKiB(_ pid: pid_t) -> Int {
    let status = String(decoding: readWholeFile("/proc/\(pid)/status") ?? [], as: UTF8.self)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return Int(line.filter(\.isNumber)) ?? 0
}
