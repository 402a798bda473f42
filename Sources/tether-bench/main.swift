import Foundation
import TetherClient

/// `tether-bench`: in-process measurements for scripts/bench, printed as one JSON object
/// (times in seconds). The ssh config comes from $TETHER_SSH_CONFIG, the client identity
/// from $TETHER_HOME, like the `tether` CLI.
///
///     tether-bench round-trip [--count N] [--warmup N] HOST
///         median time of `true` in an open session vs a 1-byte echo round trip over a
///         bare libssh2 channel to the host's `echo` subsystem (the anchor), and vs
///         `true; echo $?` in a bash sshd runs directly (`bash-floor`, the floor)
///     tether-bench stream [--bytes N] HOST
///         `head -c N /dev/zero` in a session, output read by the library and discarded
///     tether-bench raw-stream [--bytes N] HOST
///         the same through a bare libssh2 channel to `bash-floor`: libssh2's own ceiling
let usage = """
    usage: tether-bench round-trip [--count N] [--warmup N] HOST
           tether-bench stream [--bytes N] HOST
           tether-bench raw-stream [--bytes N] HOST
    """

struct Arguments {
    var command: String
    var host: String
    var options: [String: Int]

    init(_ argv: [String]) throws {
        guard let command = argv.first else { throw BenchError(usage) }
        self.command = command
        var host: String?
        var options: [String: Int] = [:]
        var rest = argv.dropFirst()[...]
        while let word = rest.popFirst() {
            if word.hasPrefix("--") {
                let name = String(word.dropFirst(2))
                guard let value = rest.popFirst() else { throw BenchError("\(word) needs a value\n\(usage)") }
                guard let number = Int(value.replacingOccurrences(of: "_", with: "")), number > 0 else {
                    throw BenchError("\(word) needs a positive number, not '\(value)'")
                }
                options[name] = number
            } else if host == nil {
                host = word
            } else {
                throw BenchError("unexpected argument '\(word)'\n\(usage)")
            }
        }
        guard let host else { throw BenchError("give the HOST to measure\n\(usage)") }
        self.host = host
        self.options = options
    }

    func option(_ name: String, default value: Int, allowed: Set<String>) throws -> Int {
        if let unknown = options.keys.first(where: { !allowed.contains($0) }) {
            throw BenchError("unknown option --\(unknown) for \(command)\n\(usage)")
        }
        return options[name] ?? value
    }
}

func json(_ fields: [(String, Double)]) -> String {
    "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

func run() async throws {
    let arguments = try Arguments(Array(CommandLine.arguments.dropFirst()))
    switch arguments.command {
    case "round-trip":
        let allowed: Set<String> = ["count", "warmup"]
        let count = try arguments.option("count", default: 1000, allowed: allowed)
        let warmup = try arguments.option("warmup", default: max(10, count / 20), allowed: allowed)
        // "tether": awaited on the client's loop executor, the library's low-latency way;
        // "tether_pool": the same from Swift's global executor (a thread hop per await).
        let host = arguments.host
        let tether = Timings(try await SessionProbe.roundTrips(destination: host, count: count, warmup: warmup, onLoop: true))
        let pool = Timings(try await SessionProbe.roundTrips(destination: host, count: count, warmup: warmup, onLoop: false))
        let echo = Timings(try await ChannelProbe.measure(.echo, destination: host, count: count, warmup: warmup))
        let bash = Timings(try await ChannelProbe.measure(.bashRoundTrip, destination: host, count: count, warmup: warmup))
        print(json([
            ("tether", tether.median), ("echo", echo.median), ("tether_pool", pool.median),
            ("bash_floor", bash.median), ("bash_floor_p90", bash.percentile(0.9)),
            ("tether_p90", tether.percentile(0.9)), ("echo_p90", echo.percentile(0.9)),
            ("tether_mean", tether.mean), ("echo_mean", echo.mean),
            ("count", Double(count)),
        ]))
    case "stream":
        let bytes = try arguments.option("bytes", default: 1_000_000_000, allowed: ["bytes"])
        let seconds = try await SessionProbe.stream(destination: arguments.host, bytes: bytes)
        print(json([("seconds", seconds), ("bytes", Double(bytes)), ("mb_per_s", Double(bytes) / seconds / 1e6)]))
    case "raw-stream":
        let bytes = try arguments.option("bytes", default: 1_000_000_000, allowed: ["bytes"])
        let seconds = try await ChannelProbe.measure(.rawStream(bytes: bytes), destination: arguments.host,
                                                     count: 1, warmup: 0)[0]
        print(json([("seconds", seconds), ("bytes", Double(bytes)), ("mb_per_s", Double(bytes) / seconds / 1e6)]))
    case "-h", "--help", "help":
        print(usage)
    default:
        throw BenchError("unknown command '\(arguments.command)'\n\(usage)")
    }
}

do {
    try await run()
    TetherClient.shutdownEventLoop()
} catch {
    TetherClient.shutdownEventLoop()
    FileHandle.standardError.write(Data("tether-bench: \(error)\n".utf8))
    exit(1)
}
