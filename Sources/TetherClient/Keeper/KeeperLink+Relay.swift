import TetherIO
import TetherProtocol

/// The relaying half of a link: CLI frames onto the link with their request ids and
/// channel numbers mapped, and the host's frames back to the CLI each belongs to.
extension KeeperLink {
    // MARK: CLI → host

    /// A frame from a relaying CLI.
    func fromClient(_ client: KeeperClient, _ frame: Frame) {
        guard phase == .ready else { return }
        if frame.channel == 0 {
            switch frame.type {
            case .request:
                forwardRequest(frame, from: client, clientChannel: 0, linkChannel: 0, purpose: .relay)
            default:
                client.violation("a \(frame.type) frame on channel 0")
            }
            return
        }
        let number = frame.channel
        switch frame.type {
        case .request:
            let request = (try? ControlCodec.decodeRequest(frame.payload))?.1
            let existing = client.channels[number]
            switch KeeperChannel.verdict(for: request, channel: number, state: existing?.state) {
            case .refuse(let problem):
                refuse(frame, from: client, channel: number, problem)
                return
            case .relay:
                break
            }
            let purpose: PendingRequest.Purpose
            switch request {
            case .attach?, .jobs?: purpose = .attach
            case .detach?: purpose = .detach
            default: purpose = .relay
            }
            let linkChannel = existing?.link ?? openRoute(for: client, channel: number)
            if purpose == .detach {
                client.channels[number]?.state = .detaching
                // The CLI stops reading this channel: its stdout is no longer ours to write.
                client.sink?.retireNow()
            }
            forwardRequest(frame, from: client, clientChannel: number, linkChannel: linkChannel, purpose: purpose)
        case .stdinData, .stdinEOF, .ack:
            // For a channel that is over these are moot, as on the host.
            guard let channel = client.channels[number] else { return }
            write(retagged(frame, channel: channel.link))
        case .error:
            // The CLI gives up on this channel; the host closes it without an answer.
            guard let channel = client.channels.removeValue(forKey: number) else { return }
            client.sink?.retireNow()
            routes[channel.link] = nil
            detaching.remove(channel.link)
            write(retagged(frame, channel: channel.link))
        case .hello, .response, .event, .record:
            client.violation("a \(frame.type) frame on channel \(number)")
        }
    }

    /// Answers a CLI's request here, with a failure, as the host would have: the request
    /// would desync the keeper's channels from the host's.
    private func refuse(_ frame: Frame, from client: KeeperClient, channel number: UInt32, _ problem: ErrorBody) {
        guard let id = ControlCodec.requestID(of: frame.payload) else {
            client.violation("a request frame of \(frame.payload.count) bytes without a request id")
            return
        }
        send(Frame(type: .response, channel: number, payload: ControlCodec.response(id: id, .failure(problem))), to: client)
    }

    func openRoute(for client: KeeperClient, channel number: UInt32) -> UInt32 {
        var candidate = nextChannel
        while candidate == 0 || routes[candidate] != nil { candidate &+= 1 }
        nextChannel = candidate &+ 1
        routes[candidate] = .client(number: client.number, channel: number)
        client.channels[number] = KeeperChannel(link: candidate, state: .attaching)
        return candidate
    }

    func forwardRequest(_ frame: Frame, from client: KeeperClient, clientChannel: UInt32,
                                linkChannel: UInt32, purpose: PendingRequest.Purpose) {
        guard let clientID = ControlCodec.requestID(of: frame.payload) else {
            client.violation("a request frame of \(frame.payload.count) bytes without a request id")
            return
        }
        let id = allocateRequestID()
        pending[id] = PendingRequest(client: client.number, clientRequestID: clientID, clientChannel: clientChannel,
                                     linkChannel: linkChannel, purpose: purpose)
        if purpose == .detach { detaching.insert(linkChannel) }
        var frame = frame
        frame.channel = linkChannel
        Self.setRequestID(id, in: &frame.payload)
        write(frame)
    }

    /// Link request ids: below 0x80000000 (the host reserves the top bit), never one
    /// that still waits for its answer.
    func allocateRequestID() -> UInt32 {
        var id = nextRequestID
        while pending[id] != nil || id == 0 { id = id >= 0x7fff_ffff ? 1 : id + 1 }
        nextRequestID = id >= 0x7fff_ffff ? 1 : id + 1
        return id
    }

    func write(_ frame: Frame) {
        guard phase != .closed else { return }
        connection.write(frame.encoded())
        if !writeBackedUp && connection.pendingWriteBytes > Self.writeHighWatermark {
            writeBackedUp = true
            for client in clients.values { client.connection.pauseReading() }
        }
    }

    func linkDrained() {
        guard writeBackedUp, connection.pendingWriteBytes <= Self.writeHighWatermark else { return }
        writeBackedUp = false
        for client in Array(clients.values) {
            client.connection.resumeReading()
            client.connection.deliverBufferedFrames()
        }
    }

    // MARK: Host → CLI

    func fromHost(_ frame: Frame) {
        if frame.channel != 0 {
            switch frame.type {
            case .response: routeResponse(frame)
            case .record, .event, .error: routeChannelFrame(frame)
            case .hello, .request, .stdinData, .stdinEOF, .ack:
                fail(KeeperFailure(.protocolViolation, "the host sent an unexpected \(frame.type) frame"))
            }
            return
        }
        switch frame.type {
        case .response:
            routeResponse(frame)
        case .error:
            // Fatal for the whole connection: every CLI hears the host's own words, as
            // it would have on a direct connection.
            let body = (try? WireJSON.decode(ErrorBody.self, from: frame.payload)) ?? ErrorBody(.internal, "unreadable error frame")
            log.write("\(destination): the host ended the connection: \(body.message)")
            finish(.failed(KeeperFailure(hostError: body)), sending: frame)
        case .event:
            break  // nothing is addressed to the connection itself
        case .hello, .request, .stdinData, .stdinEOF, .ack, .record:
            fail(KeeperFailure(.protocolViolation, "the host sent an unexpected \(frame.type) frame"))
        }
    }

    func routeResponse(_ frame: Frame) {
        guard let id = ControlCodec.requestID(of: frame.payload),
              let request = pending.removeValue(forKey: id) else { return }
        switch request.purpose {
        case .keepalive:
            keepaliveAnswered()
            return
        case .heartbeat:
            return
        case .cleanup:
            routes[request.linkChannel] = nil
            detaching.remove(request.linkChannel)
            return
        case .detach:
            endChannel(request.linkChannel)
        case .attach:
            if case .failure? = (try? ControlCodec.decodeResponse(frame.payload))?.1 {
                endChannel(request.linkChannel)
            } else {
                markAttached(request.linkChannel)
            }
        case .relay:
            break
        }
        guard let client = clients[request.client] else { return }
        var frame = frame
        frame.channel = request.clientChannel
        Self.setRequestID(request.clientRequestID, in: &frame.payload)
        send(frame, to: client)
    }

    /// Output — nearly all the bytes — crosses as it came, with its channel field set to
    /// the CLI's number in place: the decoder's copy is the frame's only one.
    func routeRecord(_ wire: inout WireFrame) {
        guard case .client(let number, let clientChannel)? = routes[wire.channel],
              let client = clients[number] else { return }  // stragglers of a finished channel
        wire.channel = clientChannel
        client.deliver(wire)
        noteBacklog(client)
    }

    func routeChannelFrame(_ frame: Frame) {
        guard let route = routes[frame.channel] else { return }  // stragglers of a finished channel
        guard case .client(let number, let clientChannel) = route else {
            if frame.type == .error { endChannel(frame.channel) }
            return
        }
        var ends = frame.type == .error
        if frame.type == .error {
            endChannel(frame.channel)
        } else if frame.type == .event {
            switch try? WireJSON.decode(Event.self, from: frame.payload) {
            case .takenOver?:
                // The host detaches a channel whose session another client took.
                endChannel(frame.channel)
                ends = true
            case .removed?:
                ends = true
            default:
                break
            }
        }
        guard let client = clients[number] else { return }
        client.deliver(retagged(frame, channel: clientChannel), endsChannel: ends)
        noteBacklog(client)
    }

    /// Link channel M is over on the host: forget both ends of its route.
    func endChannel(_ linkChannel: UInt32) {
        detaching.remove(linkChannel)
        guard let route = routes.removeValue(forKey: linkChannel),
              case .client(let number, let clientChannel) = route,
              let client = clients[number], client.channels[clientChannel]?.link == linkChannel else { return }
        client.channels[clientChannel] = nil
    }

    /// The host bound link channel M: its CLI channel is attached (unless it is already
    /// detaching, or gone: then the detach on its way ends it).
    func markAttached(_ linkChannel: UInt32) {
        guard case .client(let number, let clientChannel)? = routes[linkChannel],
              let client = clients[number], client.channels[clientChannel]?.link == linkChannel,
              client.channels[clientChannel]?.state == .attaching else { return }
        client.channels[clientChannel]?.state = .attached
    }

    func send(_ frame: Frame, to client: KeeperClient) {
        client.deliver(frame)
        noteBacklog(client)
    }

    /// A CLI that reads slowly only slows itself: the host sends each of its channels at
    /// most a window of unacknowledged records (protocol.md, "Flow control"), so its
    /// queue here is bounded and the link is never paused for it. A CLI whose queue grows
    /// past what its windows allow is not following the protocol: its stream is ended
    /// (a disconnect: its output stays journaled on the host).
    private func noteBacklog(_ client: KeeperClient) {
        guard client.connection.isBackedUp || client.sink?.isBlocked == true else { return }
        if client.connection.isBackedUp { slowClients.insert(client.number) }
        let bound = FlowControl.channelWindow * (client.channels.count + 2) + (4 << 20)
        if client.pendingBytes > bound {
            log.write("\(destination): CLI #\(client.number) has \(client.pendingBytes) bytes unread, more than its windows allow; ending its stream")
            client.connection.close()
        }
    }

    /// A CLI's socket drained (or the CLI left).
    func clientDrained(_ number: Int) {
        slowClients.remove(number)
    }

    func retagged(_ frame: Frame, channel: UInt32) -> Frame {
        var frame = frame
        frame.channel = channel
        return frame
    }

    static func setRequestID(_ id: UInt32, in payload: inout [UInt8]) {
        guard payload.count >= 4 else { return }
        payload[0] = UInt8(id >> 24)
        payload[1] = UInt8((id >> 16) & 0xff)
        payload[2] = UInt8((id >> 8) & 0xff)
        payload[3] = UInt8(id & 0xff)
    }
}
