import Glibc

/// A point on the monotonic clock; tests count timeouts against it so a stuck peer fails
/// the test with a message instead of hanging the suite.
public struct Deadline: Sendable {
    public let nanoseconds: UInt64

    public init(secondsFromNow seconds: Double) {
        nanoseconds = Deadline.now() + UInt64(max(0, seconds) * 1_000_000_000)
    }

    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public var hasPassed: Bool { Deadline.now() >= nanoseconds }

    /// Milliseconds left, clamped for poll(2): 0 once passed.
    public var remainingMilliseconds: Int32 {
        let now = Deadline.now()
        guard nanoseconds > now else { return 0 }
        return Int32(min(UInt64(Int32.max), (nanoseconds - now + 999_999) / 1_000_000))
    }

    public var remainingSeconds: Double {
        let now = Deadline.now()
        return nanoseconds > now ? Double(nanoseconds - now) / 1e9 : 0
    }
}
