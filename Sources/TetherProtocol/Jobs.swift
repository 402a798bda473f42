/// Jobs: scripts that run in a copy of a session's shell, beside its foreground commands,
/// each with an output journal of its own (protocol.md, "Jobs").

/// A job's state, as PowerShell names them.
public enum JobState: String, Codable, Sendable, CaseIterable {
    /// Accepted, waiting for the session's shell to copy itself (it is running a command
    /// and no snapshot of it exists yet).
    case notStarted = "NotStarted"
    case running = "Running"
    /// Its output buffer is full in `block` mode: the job waits in write(2) for a reader.
    case blocked = "Blocked"
    /// Ended with status 0.
    case completed = "Completed"
    /// Ended with a non-zero status (or a signal nobody here sent).
    case failed = "Failed"
    /// Ended by `jobStop` (or the session's removal).
    case stopped = "Stopped"

    public var hasEnded: Bool {
        switch self {
        case .completed, .failed, .stopped: true
        case .notStarted, .running, .blocked: false
        }
    }

    /// The byte a `jobEnded` record carries.
    public var code: UInt8 {
        switch self {
        case .notStarted: 0
        case .running: 1
        case .blocked: 2
        case .completed: 3
        case .failed: 4
        case .stopped: 5
        }
    }

    public init?(code: UInt8) {
        guard let state = JobState.allCases.first(where: { $0.code == code }) else { return nil }
        self = state
    }
}

/// How a job's copy of the shell was made.
public enum JobShellCopy: String, Codable, Sendable {
    /// The session's bash forked it (it was idle): exactly its state at the job's start.
    case fork
    /// A new bash loaded the session's last snapshot (its bash was running a command):
    /// the state as of the last time the session was idle.
    case snapshot
}

public struct JobStartRequest: Codable, Sendable, Equatable {
    public var script: String
    public var arguments: [String]
    /// A name to find it by (`--job-name`); empty: "Job<id>".
    public var name: String?
    public init(script: String, arguments: [String] = [], name: String? = nil) {
        self.script = script
        self.arguments = arguments
        self.name = name
    }
}

/// Everything a runspace knows about one job.
public struct JobInfo: Codable, Sendable, Equatable {
    /// Numbered from 1 per session.
    public var id: UInt64
    /// Unique across sessions and hosts (`--job-instance-id`).
    public var instanceID: String
    public var name: String
    public var state: JobState
    /// Output not yet acknowledged by any reader (or a `dropped` notice) is waiting.
    public var hasMoreData: Bool
    /// Bytes of that output.
    public var unreadBytes: Int
    /// The script as given (arguments apart).
    public var command: String
    public var arguments: [String]
    public var exitStatus: Int32?
    public var startedAt: Double
    public var endedAt: Double?
    public var shellCopy: JobShellCopy?
    /// The job's process (group leader), while known.
    public var pid: Int32?
    public var sessionInstanceID: String
    public var sessionName: String

    public init(id: UInt64, instanceID: String, name: String, state: JobState, hasMoreData: Bool,
                unreadBytes: Int, command: String, arguments: [String], exitStatus: Int32?,
                startedAt: Double, endedAt: Double?, shellCopy: JobShellCopy?, pid: Int32?,
                sessionInstanceID: String, sessionName: String) {
        self.id = id
        self.instanceID = instanceID
        self.name = name
        self.state = state
        self.hasMoreData = hasMoreData
        self.unreadBytes = unreadBytes
        self.command = command
        self.arguments = arguments
        self.exitStatus = exitStatus
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.shellCopy = shellCopy
        self.pid = pid
        self.sessionInstanceID = sessionInstanceID
        self.sessionName = sessionName
    }
}

public enum JobLimits {
    /// Jobs that may run at once in one session unless `create` says otherwise.
    public static let defaultConcurrent = 16
    /// The most a session may ask for.
    public static let maxConcurrent = 1024
}
