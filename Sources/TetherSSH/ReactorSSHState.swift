import CTetherPosix
import TetherIO

/// What all SSH connections on one Reactor share: the set of live sockets that get
/// TCP_QUICKACK re-armed before every poll (it does not stick; without it sshd's Nagle
/// meets our delayed ACK and each request/response pays ~40 ms), and one read buffer
/// (connections on a loop never read at the same time, and each chunk is copied out
/// before delivery), so a connection costs no 128 KiB buffer of its own.
final class ReactorSSHState {
    var quickAckSockets = Set<Int32>()
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 16)

    deinit { readBuffer.deallocate() }

    private final class WeakEntry: @unchecked Sendable {
        weak var state: ReactorSSHState?
        init(_ state: ReactorSSHState) { self.state = state }
    }
    private static let lock = Lock()
    nonisolated(unsafe) private static var byReactor: [ObjectIdentifier: WeakEntry] = [:]

    /// The state for `reactor`, created (and its before-poll hook installed) on first use.
    /// The reactor's hook owns the state, so it lives exactly as long as the reactor.
    static func of(_ reactor: Reactor) -> ReactorSSHState {
        lock.withLock {
            let key = ObjectIdentifier(reactor)
            if let state = byReactor[key]?.state { return state }
            let state = ReactorSSHState()
            byReactor = byReactor.filter { $0.value.state != nil }
            byReactor[key] = WeakEntry(state)
            reactor.addBeforePollHook {
                for fd in state.quickAckSockets { _ = tether_tcp_quickack(fd) }
            }
            return state
        }
    }
}
