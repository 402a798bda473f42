import Glibc
import TetherIO
import TetherProtocol

/// Forwards a local descriptor (the CLI's stdin) to a running command as `stdinData`
/// frames, driven by the loop: it reads only when the descriptor is readable and the
/// transport is not backed up, so a fast producer never fills memory here.
final class DescriptorStdinPump {
    private let reactor: Reactor
    private let host: HostConnection
    private let fd: Int32
    private let channel: UInt32
    private var registration: Registration?
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private(set) var finished = false
    /// Called once the end of input has been sent (not when stopped).
    var onEnd: (() -> Void)?

    init(reactor: Reactor, host: HostConnection, fd: Int32, channel: UInt32) {
        self.reactor = reactor
        self.host = host
        self.fd = fd
        self.channel = channel
    }

    func start() {
        registration = reactor.register(fd: fd, interest: .readable) { [weak self] _ in
            self?.readable()
        }
    }

    private func readable() {
        guard !finished else { return }
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { return }
            // An unreadable stdin ends the command's input rather than hanging it.
            endOfInput()
            return
        }
        if n == 0 {
            endOfInput()
            return
        }
        host.send(Frame(type: .stdinData, channel: channel, payload: Array(buffer[0..<n])))
        if host.isWriteBackedUp, let registration {
            reactor.update(registration, interest: .none)
            host.whenWritable { [weak self] in
                guard let self, !self.finished, let registration = self.registration else { return }
                self.reactor.update(registration, interest: .readable)
            }
        }
    }

    private func endOfInput() {
        host.send(Frame(type: .stdinEOF, channel: channel))
        onEnd?()
        stop()
    }

    /// Stops reading (the command ended or the channel failed). Sends nothing.
    func stop() {
        finished = true
        if let registration { reactor.unregister(registration) }
        registration = nil
    }
}
