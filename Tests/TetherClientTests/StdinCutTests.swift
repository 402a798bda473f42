import XCTest
import Foundation
import Glibc
import TetherIO
import TetherTestSupport

/// Forwarded stdin can't be resumed after a cut link: a command still being fed sees end
/// of file early, so its exit status can't stand for success — tether says so and exits
/// 255. A command that had all of its input (the host had its end) keeps its status.
final class StdinCutTests: ResumeTestCase {
    func testATruncatedInputIsAFailureNotTheCommandsStatus() throws {
        try check(["new", "alpha", "--name", "s"])
        let file = workDirectory + "/received.txt"
        let input = try Descriptors.pipe()
        defer { close(input.write) }
        let run = try spawnTether(["invoke", "--name", "s", "--", "cat > \"$1\"; echo \"cat ended\"", file],
                                  home: firstHome, label: "cat", stdinFD: input.read)
        close(input.read)
        _ = "part one\n".withCString { write(input.write, $0, 9) }
        try waitUntil("cat wrote the first part") {
            String(decoding: Descriptors.readFile(file) ?? [], as: UTF8.self) == "part one\n"
        }
        try cutLink(for: 1)
        // The feeding pipe is still open (more was to come): the resume closed cat's input.
        XCTAssertEqual(try run.wait(timeout: 60), .exited(255), run.stderrText)
        XCTAssertEqual(run.stdoutText, "cat ended\n")
        XCTAssertTrue(run.stderrText.contains("tether: alpha: stdin could not be resumed"), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("the command exited with 0, but its stdin was cut by the lost connection"),
                      run.stderrText)
        XCTAssertEqual(String(decoding: Descriptors.readFile(file) ?? [], as: UTF8.self), "part one\n")
    }

    func testACommandThatHadItsWholeInputKeepsItsStatus() throws {
        try check(["new", "alpha", "--name", "s"])
        let script = "cat > /dev/null; echo 'input read'; " + Self.loop
        let input = try inputFile("all of it\n")
        let run = try spawnTether(["invoke", "--name", "s", "--", script], home: firstHome, label: "whole", stdinFD: input)
        close(input)
        try waitUntil("the input was read to its end") { run.stdoutText.contains("line 3\n") }
        try cutLink(for: 1)
        XCTAssertEqual(try run.wait(timeout: 60), .exited(7), run.stderrText)
        XCTAssertEqual(run.stdoutText, "input read\n" + Self.allLines)
        XCTAssertFalse(run.stderrText.contains("stdin"), run.stderrText)
        XCTAssertTrue(run.stderrText.contains("reconnected"), run.stderrText)
    }

    /// A regular file with `text`, opened for reading (stdin that ends).
    func inputFile(_ text: String) throws -> Int32 {
        let path = workDirectory + "/input-\(UUID().uuidString)"
        try writeFile(path, text)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError.last("open \(path)") }
        return fd
    }
}
