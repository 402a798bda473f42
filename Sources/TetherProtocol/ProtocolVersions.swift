/// Protocol versions: which this build speaks, how two peers settle on one, and how a
/// feature an older peer lacks is refused (docs/protocol.md, "Versions").
///
/// Every hop negotiates: the initiator's `hello` carries the oldest version it speaks in
/// the u16 and the newest in the JSON (`newestProtocol`); the answer's u16 is the highest
/// version both speak, and from then on the connection speaks that version. Tether 0.1
/// (protocol 2) sends no `newestProtocol` and accepts exactly 2, so a newer side speaks 2
/// with it — which is why the oldest version spoken stays 2 until 0.1 is out of support.

/// The newest protocol version this build speaks. Bump it when a release adds requests,
/// flags, records or events an older peer would not understand, and give the new ones
/// `requiredProtocol` = the new number.
public let tetherProtocolVersion: UInt16 = 3

/// The oldest protocol version this build still speaks (tether 0.1's).
public let tetherOldestProtocolVersion: UInt16 = 2

/// The versions one side speaks: every version from `oldest` to `newest`.
public struct ProtocolRange: Sendable, Equatable, CustomStringConvertible {
    public var oldest: UInt16
    public var newest: UInt16

    public init(oldest: UInt16, newest: UInt16) {
        self.oldest = oldest
        self.newest = max(oldest, newest)
    }

    /// What this build speaks.
    public static let ours = ProtocolRange(oldest: tetherOldestProtocolVersion, newest: tetherProtocolVersion)

    /// What a relay offers the next hop for a client that negotiated `version` with it:
    /// nothing newer than the client speaks, so the next hop never sends it what it lacks.
    public static func upTo(_ version: UInt16) -> ProtocolRange {
        ProtocolRange(oldest: min(tetherOldestProtocolVersion, version), newest: min(version, tetherProtocolVersion))
    }

    public func contains(_ version: UInt16) -> Bool { (oldest...newest).contains(version) }

    /// The highest version both ranges hold, or nil when they share none.
    public func highestShared(with other: ProtocolRange) -> UInt16? {
        let top = min(newest, other.newest)
        return top >= max(oldest, other.oldest) ? top : nil
    }

    public var description: String { oldest == newest ? "\(oldest)" : "\(oldest)–\(newest)" }
}

/// The release that first spoke each protocol version, for messages that tell a person
/// what to install ("needs protocol 3 (tether 0.2 or later)").
public func tetherRelease(introducingProtocol version: UInt16) -> String {
    switch version {
    case ...2: "0.1"
    case 3: "0.2"
    default: "a release newer than \(tetherReleaseVersion)"
    }
}

/// "protocol 2 (tether 0.1)": a version as a person can act on it.
public func protocolDescription(_ version: UInt16) -> String {
    let release = tetherRelease(introducingProtocol: version)
    return release.hasPrefix("a release") ? "protocol \(version) (\(release))" : "protocol \(version) (tether \(release))"
}

/// The refusal of a feature the peer's protocol version lacks: the sender checks before it
/// sends, because the older side can't know what it lacks. The code is `version_mismatch`,
/// which every release understands.
///
///     try requires(protocol: 3, for: "invoke --stream", peer: "host h1", speaks: connection.protocolVersion)
public func requires(protocol needed: UInt16, for feature: String, peer: String, speaks version: UInt16) throws(ErrorBody) {
    guard version < needed else { return }
    throw ErrorBody(.versionMismatch, protocolRefusal(feature: feature, needed: needed, peer: peer, speaks: version))
}

/// The message of that refusal (also for a relay answering on an older hop's behalf).
public func protocolRefusal(feature: String, needed: UInt16, peer: String, speaks version: UInt16) -> String {
    let release = tetherRelease(introducingProtocol: needed)
    let newer = release.hasPrefix("a release") ? release : "tether \(release) or later"
    return "refused: \(feature) needs protocol \(needed) (\(newer)); \(peer) speaks \(protocolDescription(version))"
}

// MARK: What each message needs

extension Request {
    /// The protocol version that introduced this request (and the options it uses). A
    /// sender whose peer speaks an older one refuses it with `requires(protocol:…)`
    /// instead of sending it. A new request or option adds its own line here.
    public var requiredProtocol: UInt16 {
        switch self {
        case .create, .list, .claim, .release, .remove, .ping, .attach, .detach, .signal,
             .configure, .describe, .resize, .configurations:
            return 2
        case .invoke(let invoke):
            return invoke.requiredProtocol
        case .jobs, .jobStart, .jobList, .jobReceive, .jobWait, .jobStop, .jobRemove:
            return 2
        case .restoreSocket:
            return 3
        }
    }
}

extension Request {
    /// How a refusal names the request: "'jobStart'", "'invoke' with these options".
    public var protocolFeature: String {
        if case .invoke(let invoke) = self, invoke.requiredProtocol > tetherOldestProtocolVersion {
            return "'invoke' with these options"
        }
        return "'\(kindName)'"
    }

    /// The refusal of this request by a sender whose peer speaks `version`, if it needs more.
    public func refusal(peer: String, speaks version: UInt16) -> ErrorBody? {
        let needed = requiredProtocol
        guard needed > version else { return nil }
        return ErrorBody(.versionMismatch, protocolRefusal(feature: protocolFeature, needed: needed, peer: peer, speaks: version))
    }
}

extension InvokeRequest {
    /// Flags 1, 2, 4, 8 and 16 are protocol 2's; a new flag adds its own line here.
    public var requiredProtocol: UInt16 {
        2
    }
}

extension Record.Kind {
    /// The protocol version that introduced this kind of record: a runspace sends a channel
    /// only kinds its client's version has (docs/protocol.md, "Versions").
    public var requiredProtocol: UInt16 {
        switch self {
        case .stdout, .stderr, .commandStarted, .commandEnded, .dropped, .sessionClosed, .sessionBroken,
             .jobEnded, .jobCaughtUp:
            return 2
        case .warning, .verbose, .information, .progress:
            return 3
        }
    }
}
