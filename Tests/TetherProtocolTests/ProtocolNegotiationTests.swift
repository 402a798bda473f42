import XCTest
@testable import TetherProtocol

/// The hello's version negotiation, byte for byte as tether 0.1 (protocol 2, exact
/// match) reads and writes it, and the refusal of what an older peer lacks.
final class ProtocolNegotiationTests: XCTestCase {
    /// Tether 0.1's check of a hello: magic, then exactly version 2.
    private func version01Accepts(_ payload: [UInt8]) -> Bool {
        guard let (_, version) = try? Hello.read(payload) else { return false }
        return version == 2
    }

    func testAnOfferCarriesTheOldestVersionInItsU16AndTheNewestInItsJSON() throws {
        let payload = Hello(role: .client, clientID: "c").payload()
        let (hello, version) = try Hello.read(payload)
        XCTAssertEqual(version, tetherOldestProtocolVersion)
        XCTAssertEqual(hello.newestProtocol, tetherProtocolVersion)
        XCTAssertEqual(hello.offered(version: version), .ours)
        // What tether 0.1's subsystem checks: it answers such a hello.
        XCTAssertTrue(version01Accepts(payload))
    }

    func testAHostAnswersTheHighestVersionBothSpeak() throws {
        let newClient = Frame(type: .hello, channel: 0, payload: Hello(role: .client).payload())
        let (_, withNew) = try Hello.opening(newClient, from: [.client]) { _ in ErrorBody(.badFrame, "role") }
        XCTAssertEqual(withNew, tetherProtocolVersion)

        // Tether 0.1's client: u16 2, no newestProtocol key.
        let oldClient = Frame(type: .hello, channel: 0, payload: Hello(role: .client, newestProtocol: nil).payload(version: 2))
        let (_, withOld) = try Hello.opening(oldClient, from: [.client]) { _ in ErrorBody(.badFrame, "role") }
        XCTAssertEqual(withOld, 2)
        // …and the answer is what 0.1's client demands: exactly 2.
        XCTAssertTrue(version01Accepts(Hello(role: .host).payload(version: withOld)))
    }

    func testAClientSpeaksWhatTheHostAnswered() throws {
        // Tether 0.1's host answers 2 without newestProtocol.
        let (_, version) = try Hello.answer(Hello(role: .host, newestProtocol: nil).payload(version: 2))
        XCTAssertEqual(version, 2)
        XCTAssertEqual(try Hello.answer(Hello(role: .host).payload(version: 3)).version, 3)
    }

    func testARelayOffersNoMoreThanItsClientSpeaks() throws {
        let downstream = Frame(type: .hello, channel: 0, payload: Hello(role: .subsystem, newestProtocol: 2).payload())
        let (_, version) = try Hello.opening(downstream, from: [.subsystem]) { _ in ErrorBody(.badFrame, "role") }
        XCTAssertEqual(version, 2)
        XCTAssertEqual(ProtocolRange.upTo(2), ProtocolRange(oldest: 2, newest: 2))
    }

    func testNoSharedVersionIsRefusedNamingBothRanges() {
        let future = Frame(type: .hello, channel: 0, payload: Hello(role: .client, newestProtocol: 9).payload(version: 7))
        XCTAssertThrowsError(try Hello.opening(future, from: [.client]) { _ in ErrorBody(.badFrame, "role") }) { error in
            let body = error as? ErrorBody
            XCTAssertEqual(body?.code, .versionMismatch)
            XCTAssertTrue(body?.message.contains("peer speaks 7–9, this side speaks \(ProtocolRange.ours)") == true, body?.message ?? "")
        }
        XCTAssertThrowsError(try Hello.answer(Hello(role: .host, newestProtocol: nil).payload(version: 1))) { error in
            XCTAssertEqual(error as? ProtocolError, .versionMismatch(peer: ProtocolRange(oldest: 1, newest: 1), ours: .ours))
            XCTAssertTrue("\(error)".contains("the peer needs tether 0.1 or later"), "\(error)")
        }
    }

    func testRangesIntersect() {
        let ours = ProtocolRange(oldest: 2, newest: 3)
        XCTAssertEqual(ours.highestShared(with: ProtocolRange(oldest: 2, newest: 2)), 2)
        XCTAssertEqual(ours.highestShared(with: ProtocolRange(oldest: 3, newest: 5)), 3)
        XCTAssertNil(ours.highestShared(with: ProtocolRange(oldest: 4, newest: 5)))
        XCTAssertNil(ours.highestShared(with: ProtocolRange(oldest: 1, newest: 1)))
        XCTAssertEqual(ours.description, "2–3")
    }

    func testARefusalNamesTheVersionAndReleaseThatHaveTheFeature() {
        XCTAssertNoThrow(try requires(protocol: 2, for: "'jobStart'", peer: "the host", speaks: 2))
        XCTAssertThrowsError(try requires(protocol: 3, for: "invoke --stream", peer: "the host", speaks: 2)) { error in
            let body = error as? ErrorBody
            XCTAssertEqual(body?.code, .versionMismatch)
            XCTAssertEqual(body?.message, "refused: invoke --stream needs protocol 3 (tether 0.2 or later); the host speaks protocol 2 (tether 0.1)")
        }
        XCTAssertTrue(protocolRefusal(feature: "x", needed: 9, peer: "p", speaks: 3).contains("needs protocol 9 (a release newer than \(tetherReleaseVersion))"))
    }

    func testEveryProtocol2RequestPassesAnOldPeer() {
        let requests: [Request] = [.ping, .list(SessionFilter()), .attach(instanceID: "x", force: false, receive: true),
                                   .invoke(InvokeRequest(script: "true", token: 1, terminal: TerminalRequest(term: "xterm", size: TerminalSize(rows: 2, columns: 3)))),
                                   .jobList, .configurations]
        for request in requests {
            XCTAssertNil(request.refusal(peer: "an old runspace", speaks: 2), request.kindName)
        }
    }

    func testTheVersionLineNamesReleaseAndProtocols() {
        XCTAssertEqual(tetherVersionLine("tether"), "tether \(tetherReleaseVersion) (protocol \(tetherProtocolVersion), speaks \(ProtocolRange.ours))")
    }
}
