/// Notices a connection that died silently — no RST, no FIN: a NAT mapping gone, Wi-Fi
/// lost — the way ssh's ServerAliveInterval does. After `interval` seconds without a byte
/// from the peer it sends a probe (a Tether `ping`: any answer, any byte, counts); after
/// `countMax` more intervals with nothing heard the connection is declared dead, so a
/// dead link costs `interval × (countMax + 1)` seconds of silence, then the usual
/// resume. Loop-confined; one timer per interval, nothing per byte but a clock read.
public final class LivenessWatch {
    public struct Settings: Sendable, Equatable {
        /// Seconds of silence before a probe (ssh: ServerAliveInterval).
        public var interval: Double
        /// Probes that may go unanswered (ssh: ServerAliveCountMax).
        public var countMax: Int

        public init(interval: Double, countMax: Int) {
            self.interval = interval
            self.countMax = countMax
        }

        /// When the ssh config sets neither: a dead link is noticed after 12 s of silence.
        public static let standard = Settings(interval: 4, countMax: 2)
        /// ssh's ServerAliveCountMax default, when only the interval is configured.
        public static let sshCountMax = 3

        /// From the ssh config's values: the standard check when no interval is set (0
        /// counts as unset: it is what `ssh -G` reports then), else the interval with the
        /// config's count (ssh's 3 by default).
        public static func fromConfig(interval: Double?, countMax: Int?) -> Settings? {
            guard let interval, interval > 0 else { return standard }
            return Settings(interval: interval, countMax: countMax ?? sshCountMax)
        }

        /// Seconds of silence after which the connection is declared dead.
        public var deadAfter: Double { interval * Double(countMax + 1) }
    }

    private let reactor: Reactor
    public let settings: Settings
    private let probe: () -> Void
    private let silenceCounts: () -> Bool
    private let onDead: (String) -> Void
    private var lastHeard = Reactor.now()
    private var unanswered = 0
    private var timer: TimerHandle?
    private var stopped = false

    /// `probe` sends something the peer answers; `silenceCounts` says whether silence now
    /// can be the peer's fault (false while this side doesn't read, or can't send — then
    /// the peer may be alive and simply not reading us); `onDead` gets the reason, once.
    public init(reactor: Reactor, settings: Settings, probe: @escaping () -> Void,
                silenceCounts: @escaping () -> Bool, onDead: @escaping (String) -> Void) {
        self.reactor = reactor
        self.settings = settings
        self.probe = probe
        self.silenceCounts = silenceCounts
        self.onDead = onDead
    }

    public func start() {
        lastHeard = Reactor.now()
        arm(after: settings.interval)
    }

    /// Something arrived from the peer.
    @inline(__always)
    public func heard() { lastHeard = Reactor.now() }

    public func stop() {
        stopped = true
        if let timer { reactor.cancel(timer) }
        timer = nil
    }

    private func arm(after seconds: Double) {
        guard !stopped else { return }
        timer = reactor.schedule(after: max(0.001, seconds)) { [weak self] in self?.tick() }
    }

    private func tick() {
        timer = nil
        guard !stopped else { return }
        let now = Reactor.now()
        let quiet = Double(now &- lastHeard) / 1e9
        if quiet < settings.interval {
            unanswered = 0
            arm(after: settings.interval - quiet)
            return
        }
        guard silenceCounts() else {
            unanswered = 0
            arm(after: settings.interval)
            return
        }
        unanswered += 1
        if unanswered > settings.countMax {
            stopped = true
            onDead("no answer from the host for \(Self.format(settings.deadAfter)) s; ServerAliveInterval \(Self.format(settings.interval)), ServerAliveCountMax \(settings.countMax)")
            return
        }
        probe()
        arm(after: settings.interval)
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
