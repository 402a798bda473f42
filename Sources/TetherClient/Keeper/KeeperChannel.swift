import TetherProtocol

/// One channel a CLI opened on its keeper stream, as the keeper relays it: which link
/// channel carries it and how far it is. A local client may send anything in any order
/// (the fuzzer does); the state decides what is relayed, so the keeper's view and the
/// host's never drift apart — every link channel the host may hold attached has a route,
/// and a CLI that leaves has each of them detached.
struct KeeperChannel: Equatable {
    enum State: Equatable {
        /// `attach` is on its way: the host may bind the link channel at any moment.
        case attaching
        /// The host answered the attach: the link channel is bound to a session.
        case attached
        /// The CLI's `detach` is on its way; its answer ends the channel.
        case detaching
    }

    /// The link's channel number for it.
    var link: UInt32
    var state: State

    /// (`jobs` binds a channel to a session's jobs as `attach` binds it to the session:
    /// the same states apply.)
    ///
    /// What the keeper does with a request the CLI sends on a channel in `state` (nil: no
    /// such channel yet).
    enum Verdict {
        /// Relay it (an attach opens the channel; a detach starts its end).
        case relay
        /// Answer it here with this failure; nothing reaches the host.
        case refuse(ErrorBody)
    }

    static func verdict(for request: Request?, channel number: UInt32, state: State?) -> Verdict {
        switch (request, state) {
        case (.attach?, nil), (.jobs?, nil):
            return .relay
        case (.attach?, .some(let state)), (.jobs?, .some(let state)):
            return .refuse(ErrorBody(.badRequest, "channel \(number) is \(state.phrase); detach it first or use another channel"))
        case (_, nil):
            return .refuse(ErrorBody(.notAttached, "channel \(number) is not attached to a session; send attach on it first"))
        case (.detach?, .attaching?):
            return .refuse(ErrorBody(.badRequest, "channel \(number) is still attaching; wait for the attach's answer before detaching"))
        case (_, .detaching?):
            return .refuse(ErrorBody(.notAttached, "channel \(number) is detaching"))
        default:
            // invoke, signal (and anything the host itself must judge) on a live channel.
            return .relay
        }
    }
}

extension KeeperChannel.State {
    var phrase: String {
        switch self {
        case .attaching: "already attaching to a session"
        case .attached: "already attached to a session"
        case .detaching: "still detaching"
        }
    }
}
