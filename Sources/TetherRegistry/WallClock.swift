import Glibc

/// Wall-clock time for what the table records and people read (created, last used,
/// "held since"). Timers never use it: they run on the Reactor's monotonic clock.
public enum WallClock {
    /// Seconds since 1970, with sub-second precision.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// "2026-11-21 23:17:36 UTC": unambiguous on any machine that reads it.
    public static func format(_ seconds: Double) -> String {
        format(seconds, pattern: "%Y-%m-%d %H:%M:%S UTC")
    }

    /// "2026-11-21T23:17:36Z", for log lines.
    public static func iso8601(_ seconds: Double) -> String {
        format(seconds, pattern: "%Y-%m-%dT%H:%M:%SZ")
    }

    private static func format(_ seconds: Double, pattern: String) -> String {
        var time = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
