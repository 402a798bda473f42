/// Milliseconds each phase of a connection setup took; zero for phases not reached.
public struct SSHTimings: Sendable, Equatable, CustomStringConvertible {
    /// Name resolution (zero for numeric addresses).
    public var resolve: Double = 0
    /// TCP connect.
    public var tcp: Double = 0
    /// SSH banner exchange, key exchange and host-key verification.
    public var handshake: Double = 0
    /// User authentication.
    public var auth: Double = 0
    /// Session channel open and subsystem start.
    public var channel: Double = 0

    public init() {}

    public var total: Double { resolve + tcp + handshake + auth + channel }

    public var description: String {
        func f(_ v: Double) -> String { String(Double(Int(v * 10)) / 10) }
        return "resolve \(f(resolve)) ms, tcp \(f(tcp)) ms, handshake \(f(handshake)) ms, auth \(f(auth)) ms, channel \(f(channel)) ms"
    }
}
