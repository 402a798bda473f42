import XCTest
import Glibc
import CTetherPosix

/// The recv callback libssh2 gets (`tether_recv_unless_drained`): once a read found a
/// socket's queue empty — EAGAIN, or fewer bytes than asked for — it answers EAGAIN without
/// asking the kernel, until `tether_socket_may_have_input` (poll said readable) lets the
/// next read through. So data that arrives meanwhile waits for the poll, never for ever:
/// the connection polls the socket level-triggered whenever libssh2 is blocked reading.
final class RecvUnlessDrainedTests: XCTestCase {
    func testAnEmptiedSocketIsNotReadAgainUntilPollSaysSo() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let reader = fds[0], writer = fds[1]
        XCTAssertEqual(fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) | O_NONBLOCK), 0)
        tether_socket_may_have_input(reader)
        defer { tether_socket_may_have_input(reader) }
        var buffer = [UInt8](repeating: 0, count: 64)
        func recv() -> Int { tether_recv_unless_drained(reader, &buffer, UInt(buffer.count), 0, nil) }
        func send(_ text: String) { XCTAssertEqual(write(writer, text, text.utf8.count), text.utf8.count) }

        // Nothing there: the kernel says EAGAIN, and so does every read after it.
        XCTAssertEqual(recv(), -Int(EAGAIN))
        send("hello")
        XCTAssertEqual(recv(), -Int(EAGAIN), "read again before poll said readable")
        tether_socket_may_have_input(reader)
        XCTAssertEqual(recv(), 5)
        XCTAssertEqual(Array(buffer[0..<5]), Array("hello".utf8))

        // A short read emptied the queue: the next read is not made either.
        send("more")
        XCTAssertEqual(recv(), -Int(EAGAIN))
        tether_socket_may_have_input(reader)
        XCTAssertEqual(recv(), 4)

        // A full read says nothing about the rest: the next one goes to the kernel.
        send(String(repeating: "x", count: 100))
        tether_socket_may_have_input(reader)
        XCTAssertEqual(recv(), 64)
        XCTAssertEqual(recv(), 36)
        XCTAssertEqual(recv(), -Int(EAGAIN))

        // The peer's end is read as such (0), not hidden.
        close(writer)
        fds[1] = -1
        tether_socket_may_have_input(reader)
        XCTAssertEqual(recv(), 0)
    }
}
