import Glibc
import TetherIO
import TetherProtocol
import XCTest

/// Big output records go from a runspace's socket into the subsystem's stdout pipe by
/// splice(2), never through the subsystem's memory (`SplicedFrame`). What must hold: the
/// frames of several channels interleave on stdout only at frame boundaries, every byte
/// arrives exactly once and in order, a reader that stops holds everything back (bounded),
/// and a subsystem killed mid-frame is a dropped network — a `receive` gets exactly the rest.
final class SplicedOutputTests: XCTestCase {
    private var host: TestHost!

    override func setUpWithError() throws { host = try TestHost() }
    override func tearDown() { host.tearDown() }

    func testTwoSessionsStreamingAtOnceInterleaveWholeFramesAndArriveExact() throws {
        let client = try host.subsystem()
        let first = try binaryFile("first", size: 24 << 20, seed: 1)
        let second = try binaryFile("second", size: 20 << 20, seed: 2)
        for (channel, name) in [(UInt32(1), "one"), (2, "two")] {
            let session = try client.create(CreateRequest(name: name))
            _ = try client.attach(channel: channel, session.instanceID)
        }
        let before = try bytesThroughUserSpace(client.pid)
        let ids = [try client.sendRequest(channel: 1, .invoke(InvokeRequest(script: "cat \(first.path)"))),
                   try client.sendRequest(channel: 2, .invoke(InvokeRequest(script: "cat \(second.path)")))]
        var commands: [UInt32: UInt64] = [:]
        for (channel, id) in zip([UInt32(1), 2], ids) {
            guard case .started(let commandID) = try client.awaitResponse(channel: channel, id: id) else {
                return XCTFail("invoke on channel \(channel) did not start")
            }
            commands[channel] = commandID
        }
        // The client's decoder reads stdout as one stream of frames: a frame of one channel
        // cut into by another's would fail it (a bad length or type), long before the
        // byte comparison below.
        var streams = [UInt32(1): Stream(), 2: Stream()]
        var stalled = false
        while streams.values.contains(where: { $0.status == nil }) {
            let frame = try XCTUnwrap(client.nextFrame(timeout: 60, what: "output on channels 1 and 2") {
                ($0.channel == 1 || $0.channel == 2) && ($0.type == .record || $0.type == .error)
            }, "stdout closed mid-stream")
            XCTAssertEqual(frame.type, .record, String(decoding: frame.payload, as: UTF8.self))
            let channel = frame.channel
            try streams[channel]!.take(try Record.decode(frame.payload), command: commands[channel]!) { seq in
                try client.send(Frame(type: .ack, channel: channel, payload: ControlCodec.ack(seq)))
            }
            if !stalled && streams[1]!.stdout.count > 4 << 20 {
                // A reader that stops: the pipe to it fills, splices wait for room, and the
                // subsystem buffers nothing (its frames stay in the runspaces' sockets).
                stalled = true
                usleep(1_500_000)
                let resident = residentKiB(client.pid)
                XCTAssertLessThan(resident, 64 * 1024, "the subsystem held \(resident) KiB while the client wasn't reading")
            }
        }
        XCTAssertEqual(streams[1]!.status, 0)
        XCTAssertEqual(streams[2]!.status, 0)
        XCTAssertTrue(streams[1]!.stdout == first.bytes, "channel 1: \(streams[1]!.stdout.count) bytes, not the file's \(first.bytes.count)")
        XCTAssertTrue(streams[2]!.stdout == second.bytes, "channel 2: \(streams[2]!.stdout.count) bytes, not the file's \(second.bytes.count)")
        // The bytes went past the subsystem, not through it: read(2) and write(2) of
        // 44 MiB would count here (/proc's rchar and wchar); splice(2) doesn't.
        let through = try bytesThroughUserSpace(client.pid) - before
        print("the subsystem read and wrote \(through) bytes itself while relaying \(first.bytes.count + second.bytes.count)")
        XCTAssertLessThan(through, (first.bytes.count + second.bytes.count) / 2,
                          "the subsystem read and wrote \(through) bytes itself: output records were not spliced")
    }

    func testSubsystemKilledMidStreamThenReceiveGetsExactlyTheRest() throws {
        let file = try binaryFile("stream", size: 32 << 20, seed: 3)
        let client = try host.subsystem()
        let session = try client.create(CreateRequest(name: "cut"))
        _ = try client.attach(channel: 1, session.instanceID)
        guard case .started(let commandID) = try client.request(channel: 1, .invoke(InvokeRequest(script: "cat \(file.path)"))) else {
            return XCTFail("invoke did not start")
        }
        var stream = Stream()
        while stream.stdout.count < 6 << 20 {
            let frame = try XCTUnwrap(client.nextFrame(timeout: 60, what: "output") { $0.channel == 1 && $0.type == .record })
            try stream.take(try Record.decode(frame.payload), command: commandID) { seq in
                try client.send(Frame(type: .ack, channel: 1, payload: ControlCodec.ack(seq)))
            }
        }
        // Mid-stream, most likely mid-splice: stdout ends inside a frame, as a cut link does.
        host.killAndWait(client.pid)

        let next = try host.subsystem()
        let attached = try next.attach(channel: 1, session.instanceID, receive: true)
        XCTAssertLessThanOrEqual(attached.ackedSeq, stream.lastSeq)
        while stream.status == nil {
            let frame = try XCTUnwrap(next.nextFrame(timeout: 60, what: "the rest of the output") {
                $0.channel == 1 && ($0.type == .record || $0.type == .error)
            }, "stdout closed before the command's end")
            XCTAssertEqual(frame.type, .record, String(decoding: frame.payload, as: UTF8.self))
            let record = try Record.decode(frame.payload)
            if record.seq <= stream.lastSeq { continue }  // replayed: we had it (unacknowledged)
            try stream.take(record, command: commandID) { seq in
                try next.send(Frame(type: .ack, channel: 1, payload: ControlCodec.ack(seq)))
            }
        }
        XCTAssertEqual(stream.status, 0)
        XCTAssertTrue(stream.stdout == file.bytes, "\(stream.stdout.count) bytes, not the file's \(file.bytes.count)")
    }

    // MARK: Helpers

    /// One channel's output as a client takes it: in order, no gap, acknowledged every MiB.
    private struct Stream {
        var stdout: [UInt8] = []
        var lastSeq: UInt64 = 0
        var status: Int32?
        private var unacknowledged = 0

        mutating func take(_ record: Record, command: UInt64, acknowledge: (UInt64) throws -> Void) throws {
            if lastSeq != 0 && record.seq != lastSeq + 1 {
                throw StdioSubsystem.Failure(description: "record \(record.seq) after \(lastSeq): a gap or a repeat")
            }
            lastSeq = record.seq
            unacknowledged += record.body.count
            switch record.kind {
            case .stdout: stdout += record.body
            case .commandEnded where try record.commandID() == command: status = try record.exitStatus()
            default: break
            }
            if unacknowledged >= 1 << 20 || status != nil {
                try acknowledge(lastSeq)
                unacknowledged = 0
            }
        }
    }

    /// A file of `size` pseudo-random bytes (every byte value, no line structure) in the
    /// host's directory, and its contents.
    private func binaryFile(_ name: String, size: Int, seed: UInt64) throws -> (path: String, bytes: [UInt8]) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                words[index] = state
            }
        }
        let path = host.root + "/\(name).bin"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw SystemError.last("open \(path)") }
        defer { close(fd) }
        var written = 0
        while written < size {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, size - written) }
            guard n > 0 else { throw SystemError.last("write \(path)") }
            written += n
        }
        return (path, bytes)
    }

    /// Bytes a process moved through read(2)/write(2) and the like (/proc/PID/io's rchar
    /// plus wchar; splice(2) counts in neither).
    private func bytesThroughUserSpace(_ pid: pid_t) throws -> Int {
        let text = String(decoding: readWholeFile("/proc/\(pid)/io") ?? [], as: UTF8.self)
        let fields = text.split(separator: "\n").map { $0.split(separator: ":") }
        func value(_ name: String) -> Int? {
            fields.first { $0.first.map(String.init) == name }.flatMap { Int($0[1].filter(\.isNumber)) }
        }
        guard let read = value("rchar"), let written = value("wchar") else {
            throw StdioSubsystem.Failure(description: "no rchar/wchar in /proc/\(pid)/io")
        }
        return read + written
    }
}
