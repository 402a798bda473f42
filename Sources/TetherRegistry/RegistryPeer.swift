import TetherIO
import TetherProtocol

/// One accepted connection to the registry (a subsystem speaking for one client).
/// Garbage closes this connection only, after an error frame saying what was wrong.
final class RegistryPeer {
    private enum Phase {
        case awaitingHello
        case ready(ClientIdentity)
    }

    private let connection: FrameConnection
    private let registry: Registry
    private var phase = Phase.awaitingHello
    var onClose: () -> Void = {}

    init(fd: Int32, registry: Registry, number: Int) {
        self.registry = registry
        connection = FrameConnection(reactor: registry.reactor, readFD: fd, writeFD: fd,
                                     name: "registry peer \(number)", readBufferSize: 16 * 1024)
        connection.onFrame = { [weak self] frame in self?.handle(frame) }
        connection.onClose = { [weak self] reason in
            if case .protocolError(let error) = reason {
                self?.registry.log.write("closed a connection that sent garbage: \(error)")
            }
            self?.onClose()
        }
        connection.start()
    }

    private func handle(_ frame: Frame) {
        switch phase {
        case .awaitingHello:
            handleHello(frame)
        case .ready(let client):
            guard frame.type == .request else {
                connection.fail(ErrorBody(.badFrame, "the registry only accepts requests after hello, not \(frame.type) frames"))
                return
            }
            guard frame.channel == 0 else {
                connection.fail(ErrorBody(.badFrame, "the registry serves channel 0 only; got a request on channel \(frame.channel)"))
                return
            }
            guard let id = ControlCodec.requestID(of: frame.payload) else {
                connection.fail(ErrorBody(.badPayload, "request frame of \(frame.payload.count) bytes has no request id"))
                return
            }
            let request: Request
            do {
                (_, request) = try ControlCodec.decodeRequest(frame.payload)
            } catch {
                // The frame itself was sound, so the stream is still aligned: answer this
                // request and keep the connection.
                respond(id, .failure(ErrorBody(.badRequest, "unreadable request: \(error)")))
                return
            }
            registry.handle(request, from: client) { [weak self] response in
                self?.respond(id, response)
            }
        }
    }

    private func handleHello(_ frame: Frame) {
        let hello: Hello, version: UInt16
        do {
            (hello, version) = try Hello.opening(frame, from: [.subsystem, .client]) {
                ErrorBody(.badFrame, "the registry talks to subsystems, not to a peer with role \($0.rawValue)")
            }
        } catch {
            connection.fail(error)
            return
        }
        let client = ClientIdentity(clientID: hello.clientID ?? "unidentified",
                                    clientHost: hello.clientHost ?? hello.hostname ?? "an unnamed host")
        phase = .ready(client)
        connection.send(type: .hello, channel: 0,
                        payload: Hello(role: .host, hostname: Environment.hostName(),
                                       user: Environment.userName()).payload(version: version))
    }

    private func respond(_ id: UInt32, _ response: Response) {
        var payload = ControlCodec.response(id: id, response)
        if payload.count > Frame.maxPayloadLength, case .sessions(let infos) = response {
            // A frame that big would be refused by the subsystem and cost the connection;
            // say so instead (only a list of thousands of sessions gets here).
            payload = ControlCodec.response(id: id, .failure(ErrorBody(.frameTooLarge,
                "the list of \(infos.count) sessions is \(payload.count / 1024) KiB, more than one answer can carry (\(Frame.maxPayloadLength / 1024) KiB); narrow it with a name, state or configuration filter")))
        }
        connection.send(type: .response, channel: 0, payload: payload)
    }
}
