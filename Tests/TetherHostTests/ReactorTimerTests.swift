import XCTest
import Glibc
import TetherIO

/// The loop's timers and interest updates, which run several times per command on every
/// hop (a write scheduled `after: 0`, a held answer, an acknowledgement's delay): due
/// timers run earliest first, one a due timer schedules runs after them, one an earlier
/// timer cancels never runs, and an interest changed in place is the one polled.
final class ReactorTimerTests: XCTestCase {
    func testDueTimersRunEarliestFirstAndNewOnesAfterThem() throws {
        let reactor = try Reactor()
        var order: [String] = []
        var cancelled: TimerHandle?
        reactor.schedule(after: 0.003) { order.append("third") }
        reactor.schedule(after: 0.001) {
            order.append("first")
            reactor.schedule(after: 0) { order.append("scheduled by first") }
            if let cancelled { reactor.cancel(cancelled) }
        }
        reactor.schedule(after: 0.002) { order.append("second") }
        cancelled = reactor.schedule(after: 0.0025) { order.append("cancelled") }
        usleep(10_000)  // all four are due at the loop's first round
        reactor.run(untilIdle: true)
        XCTAssertEqual(order, ["first", "second", "third", "scheduled by first"])
    }

    func testAnUpdatedInterestIsWhatThePollWatches() throws {
        let reactor = try Reactor()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        var byte: UInt8 = 7
        XCTAssertEqual(write(fds[1], &byte, 1), 1)
        var heard: [Readiness] = []
        var registration: Registration?
        var giveUp: TimerHandle?
        registration = reactor.register(fd: fds[0], interest: .none) { readiness in
            heard.append(readiness)
            reactor.unregister(registration!)
            if let giveUp { reactor.cancel(giveUp) }
        }
        giveUp = reactor.schedule(after: 10) {
            XCTFail("the updated interest was never polled")
            reactor.unregister(registration!)
        }
        // Not readable while nobody asked; readable once the interest says so.
        reactor.schedule(after: 0.02) {
            XCTAssertTrue(heard.isEmpty)
            XCTAssertEqual(reactor.interest(of: registration!), Interest.none)
            reactor.update(registration!, interest: .readable)
            XCTAssertEqual(reactor.interest(of: registration!), .readable)
        }
        reactor.run(untilIdle: true)
        XCTAssertEqual(heard, [.readable])
    }
}
