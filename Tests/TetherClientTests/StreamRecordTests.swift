import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// PowerShell's other streams end to end, through the real sshd: `tether-warning`,
/// `tether-verbose`, `tether-information` and `tether-progress` in a session (and in the
/// programs its commands start), carried as their own records, shown on stderr (verbose
/// only with --verbose, progress only on a terminal) and listed by `--json` in order.
final class StreamRecordTests: CLITestCase {
    /// stdout, then every stream, then stdout and stderr again: one writer, one order.
    static let everyStream = """
        echo out1; tether-warning careful now; echo out2; tether-verbose some details; tether-information for you
        tether-progress 50 Copy 'file 1 of 2'; tether-progress --completed Copy; echo err >&2
        """

    /// `invoke --json`, parsed: the one session's object.
    private func invokeJSON(_ script: String, _ extra: [String] = ["--computer", "alpha"]) throws -> [String: Any] {
        let text = try check(["invoke"] + extra + ["--json", "--", script])
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap((parsed as? [[String: Any]])?.first, text)
    }

    private func records(_ object: [String: Any]) throws -> [[String: Any]] {
        try XCTUnwrap(object["records"] as? [[String: Any]], "\(object)")
    }

    func testJSONCarriesEveryRecordWithItsStreamInOrder() throws {
        let object = try invokeJSON(Self.everyStream)
        let records = try records(object)
        XCTAssertEqual(records.map { $0["stream"] as? String },
                       ["stdout", "warning", "stdout", "verbose", "information", "progress", "progress", "stderr"],
                       "\(records)")
        guard records.count == 8 else { return }
        XCTAssertEqual(records[1]["text"] as? String, "careful now")
        XCTAssertEqual(records[3]["text"] as? String, "some details")
        XCTAssertEqual(records[4]["text"] as? String, "for you")
        XCTAssertEqual(records[5]["activity"] as? String, "Copy")
        XCTAssertEqual(records[5]["status"] as? String, "file 1 of 2")
        XCTAssertEqual(records[5]["percent"] as? Int, 50)
        XCTAssertEqual(records[5]["completed"] as? Bool, false)
        XCTAssertEqual(records[6]["completed"] as? Bool, true)
        XCTAssertTrue(records[6]["percent"] is NSNull, "\(records[6])")
        XCTAssertEqual(object["stdout"] as? String, "out1\nout2\n")
        XCTAssertEqual(object["stderr"] as? String, "err\n")
    }
}
