import Foundation
import TetherIO
import TetherRunspace
import TetherSSH

/// The floors Tether's numbers are compared with: exchanges over a bare libssh2
/// `SSHConnection` — the same client code and the same sshd, nothing of Tether's host side.
///
/// - `echo`: 1-byte round trips to `Subsystem echo /bin/cat`. The issue's anchor for the
///   in-session round trip.
/// - `bashRoundTrip`: `true; echo $?` written to a bash that sshd started directly
///   (`Subsystem bash-floor /bin/bash --noprofile --norc`), the answer's newline awaited.
///   What running a command in a persistent bash behind sshd costs before any runspace,
///   framing or second process exists: no Tether design reached through sshd can beat it.
///   Through `.relayed`, the same bash sits behind one process that only copies bytes
///   (`Subsystem relay-floor`, socat): the least any design with a runspace between sshd
///   and bash — which persistence needs — can cost. Through `.relayedTwice`, behind two
///   (`Subsystem relay2-floor`): the difference prices one more copying hop, such as a
///   second Tether process between sshd and bash, in the same run.
/// - `driverRoundTrip`: `true` run the way a session's bash runs each command — the
///   runspace's prelude at startup, then its plain-command driver per command, answered
///   by one `0` line (`DriverFloor`, the runspace's own text) — in a bash behind the same
///   one relay. What the driver's guarantees cost in bash, with no
///   runspace, journal or framing around it: the least any design keeping them can cost.
/// - `rawStream`: the same bash asked for `head -c N /dev/zero`, read and discarded. What
///   libssh2 on this machine can receive at all, next to OpenSSH's client.
///
/// Runs on a Reactor of its own on a thread of its own; the samples come back through a
/// continuation when the exchange is done.
enum ChannelProbe {
    /// How the probe's bash is reached from sshd.
    enum BashPlacement {
        case direct
        case relayed
        case relayedTwice

        var subsystem: String {
            switch self {
            case .direct: "bash-floor"
            case .relayed: "relay-floor"
            case .relayedTwice: "relay2-floor"
            }
        }
    }

    enum Exchange {
        case echo
        case bashRoundTrip(BashPlacement)
        case driverRoundTrip
        case rawStream(BashPlacement, bytes: Int)

        var subsystem: String {
            switch self {
            case .echo: "echo"
            case .driverRoundTrip: BashPlacement.relayed.subsystem
            case .bashRoundTrip(let placement), .rawStream(let placement, _): placement.subsystem
            }
        }
    }

    static func measure(_ exchange: Exchange, destination: String, count: Int, warmup: Int) async throws -> [Double] {
        let target = try SSHConfig.resolve(destination, overrides: SSHOverrides(subsystem: exchange.subsystem))
        let reactor = try Reactor()
        let thread = Thread { reactor.run() }
        thread.name = "tether-bench-probe"
        thread.start()
        defer { reactor.stop() }
        return try await withCheckedThrowingContinuation { continuation in
            reactor.execute {
                let run = ProbeRun(reactor: reactor, target: target, exchange: exchange, count: count,
                                   warmup: warmup) { result in
                    continuation.resume(with: result)
                }
                run.start()
            }
        }
    }
}

/// One probe on the loop: send the request, wait for the whole answer, repeat.
private final class ProbeRun {
    private let connection: SSHConnection
    private let exchange: ChannelProbe.Exchange
    private let request: [UInt8]
    private let count: Int
    private let warmup: Int
    private var done: ((Result<[Double], Error>) -> Void)?
    private var samples: [Double] = []
    private var round = 0
    private var sentAt: UInt64 = 0
    private var receivedThisRound = 0
    /// The driver floor's startup, answered before the first round (empty otherwise).
    private var setup: [UInt8] = []
    /// Keeps the run alive while the connection's callbacks hold it weakly.
    private var selfReference: ProbeRun?

    init(reactor: Reactor, target: SSHTarget, exchange: ChannelProbe.Exchange, count: Int, warmup: Int,
         done: @escaping (Result<[Double], Error>) -> Void) {
        connection = SSHConnection(reactor: reactor, target: target)
        self.exchange = exchange
        switch exchange {
        case .echo: request = [0x2a]
        case .bashRoundTrip: request = Array("true; echo $?\n".utf8)
        case .driverRoundTrip:
            request = Array(DriverFloor.commandLine.utf8)
            setup = Array(DriverFloor.startup(script: "true").utf8)
        case .rawStream(_, let bytes): request = Array("head -c \(bytes) /dev/zero\n".utf8)
        }
        self.count = count
        self.warmup = warmup
        self.done = done
    }

    func start() {
        selfReference = self
        connection.start(
            onReady: { [weak self] in self?.begin() },
            onBytes: { [weak self] bytes in self?.received(bytes) },
            onClose: { [weak self] error in
                guard let self else { return }
                self.finish(.failure(BenchError(
                    "\(self.exchange.subsystem) connection closed early: \(error?.message ?? "by the host") "
                        + "(does sshd have `Subsystem \(self.exchange.subsystem) …`? scripts/dev-sshd configures it)")))
            })
    }

    private func begin() {
        guard !setup.isEmpty else { return send() }
        receivedThisRound = 0
        connection.write(setup)
    }

    private func send() {
        receivedThisRound = 0
        sentAt = Reactor.now()
        connection.write(request)
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        receivedThisRound += bytes.count
        if !setup.isEmpty {
            // The startup's own status line: bash is ready.
            guard bytes.last == UInt8(ascii: "\n") else { return }
            guard receivedThisRound == 2 else {
                return finish(.failure(BenchError("the driver floor's bash answered its startup with "
                                                  + "\(receivedThisRound) bytes, not \"0\\n\"")))
            }
            setup = []
            return send()
        }
        switch exchange {
        case .echo:
            // One byte out, one byte back: anything else means the echo is not an echo.
            guard receivedThisRound == 1 else {
                return finish(.failure(BenchError("echo subsystem sent \(receivedThisRound) bytes for 1")))
            }
        case .bashRoundTrip, .driverRoundTrip:
            // Both answer each command with one `0` line.
            guard bytes.last == UInt8(ascii: "\n") else { return }
            guard receivedThisRound == 2 else {
                return finish(.failure(BenchError(
                    "\(exchange.subsystem) answered \(receivedThisRound) bytes, not \"0\\n\"")))
            }
        case .rawStream(_, let total):
            guard receivedThisRound >= total else { return }
        }
        let elapsed = Double(Reactor.now() - sentAt) / 1e9
        round += 1
        if round > warmup { samples.append(elapsed) }
        if samples.count >= count {
            finish(.success(samples))
        } else {
            send()
        }
    }

    private func finish(_ result: Result<[Double], Error>) {
        guard let done else { return }
        self.done = nil
        if case .driverRoundTrip = exchange { connection.write(Array(DriverFloor.cleanup.utf8)) }
        connection.close()
        selfReference = nil
        done(result)
    }
}
