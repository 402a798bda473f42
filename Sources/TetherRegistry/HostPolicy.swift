#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import TetherIO
import TetherProtocol
import TetherRunspace

/// The host's rules for new sessions: defaults, and the minimum idle timeout an admin (or
/// a test) may lower from its 60-second floor.
struct HostPolicy {
    static let standardMinimumIdleTimeout: Double = 60
    static let defaultIdleTimeout: Double = 7200
    static let defaultOutputBuffering: OutputBuffering = .block
    static let defaultBufferLimit = RunspaceOptions.defaultBufferLimit
    static let defaultConfiguration = "bash"
    static let maximumNameLength = 128

    /// The smallest idle timeout a session may have, and where that number came from (so
    /// an error can tell the user what to change).
    let minimumIdleTimeout: Double
    let minimumSource: String

    /// `TETHER_MIN_IDLE_TIMEOUT` wins, then `<state>/host.json` {"minimumIdleTimeout": N},
    /// then 60 s. Unreadable settings are reported to the log and ignored.
    static func load(paths: HostPaths, log: HostLog) -> HostPolicy {
        if let text = Environment.get("TETHER_MIN_IDLE_TIMEOUT") {
            if let value = Double(text), value.isFinite, value >= 0 {
                return HostPolicy(minimumIdleTimeout: value, minimumSource: "TETHER_MIN_IDLE_TIMEOUT=\(text)")
            }
            log.write("ignoring TETHER_MIN_IDLE_TIMEOUT=\(text): not a number of seconds")
        }
        if let bytes = readFile(paths.hostConfigFile) {
            struct HostConfig: Decodable { var minimumIdleTimeout: Double? }
            do {
                let config = try JSONDecoder().decode(HostConfig.self, from: Data(bytes))
                if let value = config.minimumIdleTimeout, value.isFinite, value >= 0 {
                    return HostPolicy(minimumIdleTimeout: value, minimumSource: "\(paths.hostConfigFile)")
                }
            } catch {
                log.write("ignoring \(paths.hostConfigFile): \(error)")
            }
        }
        return HostPolicy(minimumIdleTimeout: standardMinimumIdleTimeout, minimumSource: "the default")
    }

    /// Nil if acceptable, else the message to send back.
    func problem(withIdleTimeout seconds: Double) -> String? {
        guard seconds.isFinite else { return "idle timeout must be a number of seconds" }
        guard seconds >= minimumIdleTimeout else {
            let lowered = minimumIdleTimeout == HostPolicy.standardMinimumIdleTimeout
                ? "" : " (set by \(minimumSource))"
            return "idle timeout of \(Self.seconds(seconds)) is below this host's minimum of \(Self.seconds(minimumIdleTimeout))\(lowered)"
        }
        return nil
    }

    func problem(withBufferLimit bytes: Int) -> String? {
        BufferLimit.problem(bytes)
    }

    /// Names are shown in lists and matched with wildcards, so they must be printable and
    /// free of wildcard characters.
    func problem(withName name: String) -> String? {
        if name.isEmpty { return "session name must not be empty" }
        if name.count > Self.maximumNameLength {
            return "session name is \(name.count) characters long; the limit is \(Self.maximumNameLength)"
        }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "session name must not contain control characters"
        }
        if name.contains(where: { "*?[]".contains($0) }) {
            return "session name '\(name)' must not contain the wildcard characters * ? [ ]"
        }
        return nil
    }

    /// "90s", "2h", "1.5s": how people write durations.
    static func seconds(_ value: Double) -> String {
        if value == value.rounded() && value >= 3600 && Int(value) % 3600 == 0 { return "\(Int(value) / 3600)h" }
        if value == value.rounded() { return "\(Int(value))s" }
        return "\(value)s"
    }
}

/// The whole file, or nil if it doesn't exist or can't be read.
func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; return nil }
        if n == 0 { return result }
        result.append(contentsOf: chunk[0..<n])
    }
}
