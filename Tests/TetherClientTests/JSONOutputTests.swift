import XCTest
import Foundation
import TetherTestSupport

/// `--json` (docs/json.md): one session object for every verb that prints sessions, and
/// every failure as an error object in the same array, with ssh's exit statuses.
final class JSONOutputTests: CLITestCase {
    override var computerCount: Int { 2 }

    /// The keys of a session object, whatever the verb.
    static let sessionKeys: Set<String> = [
        "availability", "bufferLimit", "busy", "computerName", "configurationName", "createdAt", "error",
        "holder", "id", "idleTimeout", "instanceId", "name", "outputBuffering", "reason", "state",
    ]
    static let errorElementKeys: Set<String> = ["computerName", "error", "id", "instanceId", "name"]
    static let errorKeys: Set<String> = ["code", "exitStatus", "kind", "message"]

    override func setUpWithError() throws {
        try super.setUpWithError()
        // "closed": a computer whose port refuses connections.
        let port = try closedLoopbackPort()
        try writeFile(sshConfigPath, try String(contentsOfFile: sshConfigPath, encoding: .utf8)
            + "\nHost closed\n    HostName 127.0.0.1\n    Port \(port)\n    ConnectTimeout 5\n")
    }

    private func json(_ arguments: [String], status: Int32, home: String? = nil,
                      file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let result = try tether(arguments, home: home)
        XCTAssertEqual(result.status, .exited(status), "\(arguments): \(result.stderrText)", file: file, line: line)
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdoutText.utf8))
        return try XCTUnwrap(parsed as? [[String: Any]], "\(arguments) printed \(result.stdoutText)", file: file, line: line)
    }

    private func sessions(_ elements: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        let found = elements.filter { $0["error"] is NSNull }
        for session in found {
            XCTAssertEqual(Set(session.keys), Self.sessionKeys, "\(session)", file: file, line: line)
        }
        return found
    }

    private func errors(_ elements: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        let found = elements.filter { !($0["error"] is NSNull) }
        for element in found {
            XCTAssertEqual(Set(element.keys), Self.errorElementKeys, "\(element)", file: file, line: line)
            XCTAssertEqual(Set((element["error"] as? [String: Any])?.keys ?? [:].keys), Self.errorKeys, "\(element)", file: file, line: line)
        }
        return found
    }

    private func error(_ element: [String: Any], _ key: String) -> Any? {
        (element["error"] as? [String: Any])?[key]
    }

    func testEverySessionVerbPrintsOneSchemaAndAnErrorObjectPerFailedHost() throws {
        // new: a session on alpha and beta, an error object for the closed port; exit 255.
        let created = try json(["new", "alpha,beta,closed", "--name", "j", "--json"], status: 255)
        XCTAssertEqual(sessions(created).compactMap { $0["computerName"] as? String }.sorted(), ["alpha", "beta"])
        XCTAssertEqual(sessions(created).compactMap { $0["state"] as? String }, ["Opened", "Opened"])
        let refused = errors(created)
        XCTAssertEqual(refused.count, 1)
        XCTAssertEqual(refused.first?["computerName"] as? String, "closed")
        XCTAssertEqual(error(refused[0], "kind") as? String, "connection")
        XCTAssertEqual(error(refused[0], "exitStatus") as? Int, 255)
        XCTAssertTrue((error(refused[0], "message") as? String ?? "").lowercased().contains("refused"), "\(refused)")
        XCTAssertTrue(refused[0]["id"] is NSNull && refused[0]["name"] is NSNull)

        // get, of the local list and of computers (one of them failing).
        let listed = sessions(try json(["get", "--json"], status: 0))
        XCTAssertEqual(listed.count, 2)
        let alphaID = try XCTUnwrap(listed.first { $0["computerName"] as? String == "alpha" }?["id"] as? Int)
        let remote = try json(["get", "--computer", "alpha,closed", "--json"], status: 255)
        XCTAssertEqual(sessions(remote).map { $0["id"] as? Int }, [alphaID])
        XCTAssertEqual(errors(remote).map { $0["computerName"] as? String }, ["closed"])

        // beta goes away: each verb acting on "j" reports alpha's session and beta's failure,
        // naming the session it could not act on.
        beta.stop()
        let betaSession = try XCTUnwrap(listed.first { $0["computerName"] as? String == "beta" })
        func checkBetaFailed(_ elements: [[String: Any]], line: UInt = #line) {
            let failed = errors(elements, line: line)
            XCTAssertEqual(failed.count, 1, "\(elements)", line: line)
            XCTAssertEqual(failed.first?["computerName"] as? String, "beta", line: line)
            XCTAssertEqual(failed.first?["instanceId"] as? String, betaSession["instanceId"] as? String, line: line)
            XCTAssertEqual(failed.first?["name"] as? String, "j", line: line)
            XCTAssertEqual(failed.first.flatMap { error($0, "exitStatus") } as? Int, 255, line: line)
        }
        let released = try json(["disconnect", "--name", "j", "--json"], status: 255)
        XCTAssertEqual(sessions(released).map { $0["state"] as? String }, ["Disconnected"])
        checkBetaFailed(released)
        let claimed = try json(["connect", "--name", "j", "--json"], status: 255)
        XCTAssertEqual(sessions(claimed).map { $0["state"] as? String }, ["Opened"])
        XCTAssertEqual(sessions(claimed).map { $0["id"] as? Int }, [alphaID])
        checkBetaFailed(claimed)
        // get of the local list: beta's session is Unknown, and beta's failure is there too.
        let unknown = try json(["get", "--json"], status: 255)
        XCTAssertEqual(Set(sessions(unknown).compactMap { $0["state"] as? String }), ["Opened", "Unknown"])
        XCTAssertEqual(errors(unknown).map { $0["computerName"] as? String }, ["beta"])

        // remove: the removed session in its final state.
        let removed = try json(["remove", "--name", "j", "--json"], status: 255)
        let gone = sessions(removed)
        XCTAssertEqual(gone.map { $0["id"] as? Int }, [alphaID])
        XCTAssertEqual(gone.first?["state"] as? String, "Closed")
        XCTAssertEqual(gone.first?["availability"] as? String, "None")
        XCTAssertTrue((gone.first?["reason"] as? String ?? "").hasPrefix("removed by client"), "\(gone)")
        XCTAssertNotNil(gone.first?["createdAt"] as? String)
        checkBetaFailed(removed)
        XCTAssertEqual(try json(["get", "--computer", "alpha", "--json"], status: 0).count, 0)
    }

    func testInvokeFanOutCarriesTheErrorObject() throws {
        let results = try json(["invoke", "--computer", "alpha,closed", "--json", "--", "echo hi"], status: 255)
        XCTAssertEqual(results.count, 2)
        let ok = try XCTUnwrap(results.first { $0["computerName"] as? String == "alpha" })
        XCTAssertTrue(ok["error"] is NSNull)
        XCTAssertEqual(ok["stdout"] as? String, "hi\n")
        XCTAssertEqual(ok["exitStatus"] as? Int, 0)
        let failed = try XCTUnwrap(results.first { $0["computerName"] as? String == "closed" })
        XCTAssertEqual(error(failed, "kind") as? String, "connection")
        XCTAssertEqual(error(failed, "exitStatus") as? Int, 255)
        XCTAssertTrue(failed["exitStatus"] is NSNull)
    }

    func testRefusalsAndWholeCommandFailuresAreJSONToo() throws {
        try check(["new", "alpha", "--name", "held"])
        // Another client: the session is held by the first one.
        let other = workDirectory + "/other-home"
        let refused = try json(["connect", "--computer", "alpha", "--name", "held", "--json"], status: 1, home: other)
        XCTAssertEqual(sessions(refused).count, 0)
        let failure = try XCTUnwrap(errors(refused).first)
        XCTAssertEqual(failure["name"] as? String, "held")
        XCTAssertNotNil(failure["id"] as? Int)
        XCTAssertEqual(error(failure, "kind") as? String, "remote")
        XCTAssertEqual(error(failure, "code") as? String, "held_elsewhere")
        XCTAssertEqual(error(failure, "exitStatus") as? Int, 1)

        // Nothing to act on at all: still a JSON array, with the one error.
        let nothing = try json(["disconnect", "--name", "nothing-here", "--json"], status: 1)
        XCTAssertEqual(nothing.count, 1)
        XCTAssertEqual(error(try XCTUnwrap(errors(nothing).first), "kind") as? String, "usage")
        XCTAssertTrue(nothing[0]["computerName"] is NSNull)
    }
}
