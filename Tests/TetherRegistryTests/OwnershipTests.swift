import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// Who holds a session: claim, held_elsewhere, force, release.
final class OwnershipTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testClaimHeldElsewhereAndForce() throws {
        let alice = try host.subsystem(clientID: "aaaaaaaa-1111-2222-3333-444444444444", clientHost: "alice-laptop")
        let bob = try host.subsystem(clientID: "bbbbbbbb-1111-2222-3333-444444444444", clientHost: "bob-desktop")
        let session = try alice.create(CreateRequest(name: "shared"))

        // Alice holds it: claiming again is fine for her.
        guard case .session(let mine) = try alice.request(.claim(instanceID: session.instanceID, force: false)) else {
            return XCTFail("alice's own claim failed")
        }
        XCTAssertEqual(mine.holder?.clientID, alice.clientID)

        // Bob is refused, with who holds it and how to take it anyway.
        let refused = try XCTUnwrap(try bob.request(.claim(instanceID: session.instanceID, force: false)).failure)
        XCTAssertEqual(refused.code, .heldElsewhere)
        XCTAssertTrue(refused.message.hasPrefix("session 'shared' is held by client alice-laptop (aaaaaaaa) since "), refused.message)
        XCTAssertTrue(refused.message.hasSuffix("; use --force to take it over"), refused.message)
        let attachRefused = try bob.request(channel: 1, .attach(instanceID: session.instanceID, force: false, receive: false))
        XCTAssertEqual(attachRefused.failure?.code, .heldElsewhere)
        // Bob can't disconnect Alice's session either.
        XCTAssertEqual(try bob.request(.release(instanceID: session.instanceID, idleTimeout: nil, outputBuffering: nil)).failure?.code,
                       .heldElsewhere)

        // Alice is attached when Bob forces it away.
        _ = try alice.attach(channel: 3, session.instanceID)
        XCTAssertEqual(try alice.invoke(channel: 3, "echo before").stdout, "before\n")
        let taken = try bob.attach(channel: 1, session.instanceID, force: true)
        XCTAssertTrue(taken.tookOver)
        XCTAssertEqual(taken.session.holder?.clientID, bob.clientID)
        XCTAssertEqual(taken.session.holder?.clientHost, "bob-desktop")
        XCTAssertEqual(try bob.invoke(channel: 1, "echo after").stdout, "after\n")

        // Alice's channel hears that it was taken over.
        let notice = try XCTUnwrap(try alice.nextFrame(what: "takenOver on channel 3") {
            $0.channel == 3 && ($0.type == .event || $0.type == .error)
        })
        if notice.type == .event {
            guard case .takenOver(let by) = try WireJSON.decode(Event.self, from: notice.payload) else {
                return XCTFail("expected takenOver")
            }
            XCTAssertEqual(by.clientID, bob.clientID)
        }
        let listed = try XCTUnwrap(try alice.session(session.instanceID))
        XCTAssertEqual(listed.holder?.clientID, bob.clientID)

        // Alice now needs force herself.
        XCTAssertEqual(try alice.request(.claim(instanceID: session.instanceID, force: false)).failure?.code, .heldElsewhere)

        // Bob lets go; Alice takes it without force.
        guard case .session(let released) = try bob.request(.release(instanceID: session.instanceID, idleTimeout: nil, outputBuffering: nil)) else {
            return XCTFail("bob's release failed")
        }
        XCTAssertNil(released.holder)
        let back = try alice.attach(channel: 4, session.instanceID)
        XCTAssertFalse(back.tookOver)
        XCTAssertEqual(back.session.holder?.clientID, alice.clientID)
    }

    func testHoldingSurvivesTheClientsConnection() throws {
        let alice = try host.subsystem(clientID: "aaaaaaaa-0000", clientHost: "alice")
        let session = try alice.create(CreateRequest(name: "mine"))
        alice.closeInput()
        _ = try alice.waitForExit()
        let bob = try host.subsystem(clientID: "bbbbbbbb-0000", clientHost: "bob")
        XCTAssertEqual(try bob.request(.claim(instanceID: session.instanceID, force: false)).failure?.code, .heldElsewhere)
        let aliceAgain = try host.subsystem(clientID: "aaaaaaaa-0000", clientHost: "alice")
        XCTAssertFalse(try aliceAgain.attach(channel: 1, session.instanceID).tookOver)
    }
}
