import Glibc
import TetherIO
import TetherProtocol

/// One job of the session: a copy of its shell running a script in a process group of its
/// own, with an output journal of its own. Loop-confined, like everything in a runspace.
final class Job {
    let id: UInt64
    let instanceID: String
    let name: String
    let script: String
    let arguments: [String]
    let startedAt = WallClock.now()
    var endedAt: Double?
    var shellCopy: JobShellCopy?

    /// Where the job is in its life; `state` is what clients see.
    enum Phase {
        /// Waiting for the session's bash to be idle (fork) — no snapshot could stand in.
        case pending
        /// bash is forking it right now.
        case forking
        /// Its process runs (pid known).
        case running(pid: pid_t)
        /// Reaped: what it wrote before it exited is being read before the end is reported.
        case draining(pid: pid_t, ExitStatus)
        case ended(JobState, exitStatus: Int32)
    }
    var phase = Phase.pending

    var journal = Journal()
    /// The highest seq sent to a reader (a `dropped` record at or below it is never enlarged).
    var highestSentSeq: UInt64 = 0
    var stdout: OutputPipe?
    var stderr: OutputPipe?
    /// Its own stream FIFO (`StreamPipe`; the job's `$TETHER_STREAMS`).
    var streams: StreamPipe?
    /// Our end of the job's gate FIFO (see `JobScript`), open until the job ends.
    var gateFD: Int32 = -1
    /// `jobStop` (or the session's end) asked for it: its end is `Stopped`.
    var stopRequested = false
    var stopTimer: TimerHandle?
    /// Requests answered with the job's info when it has ended (jobWait, jobStop).
    var endWaiters: [(JobInfo) -> Void] = []

    init(id: UInt64, name: String?, script: String, arguments: [String]) {
        self.id = id
        self.instanceID = UUIDText.random()
        self.name = (name?.isEmpty ?? true) ? "Job\(id)" : name!
        self.script = script
        self.arguments = arguments
    }

    var pid: pid_t? {
        switch phase {
        case .running(let pid), .draining(let pid, _): pid
        case .pending, .forking, .ended: nil
        }
    }

    var hasEnded: Bool {
        if case .ended = phase { return true }
        return false
    }

    /// Output no reader has acknowledged (stdout, stderr, or a `dropped` notice).
    var hasMoreData: Bool { !journal.isEmpty }

    func state(blocked: Bool) -> JobState {
        switch phase {
        case .pending, .forking: .notStarted
        case .running, .draining: blocked ? .blocked : .running
        case .ended(let state, _): state
        }
    }

    var exitStatus: Int32? {
        if case .ended(_, let status) = phase { return status }
        return nil
    }

    func closePipes() {
        if gateFD >= 0 { close(gateFD) }
        gateFD = -1
        stdout?.close()
        stderr?.close()
        streams?.close()
        stdout = nil
        stderr = nil
        streams = nil
    }
}

/// A random (version 4) UUID in lowercase text, without Foundation.
enum UUIDText {
    static func random() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { byte -> String in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }
        let groups = [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]]
        return groups.map { $0.joined() }.joined(separator: "-")
    }
}
