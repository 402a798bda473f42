import TetherIO
import TetherProtocol

/// The jobs of one session on a connected host (`RemoteHost.jobs(instanceID:)`): start,
/// list, receive, wait, stop, remove. No claim: any client of the same user may manage a
/// session's jobs while another client holds the session.
public final class RemoteJobs: Sendable {
    public let host: RemoteHost
    public let instanceID: String
    let channel: LoopBound<JobsChannel>

    init(host: RemoteHost, instanceID: String) {
        self.host = host
        self.instanceID = instanceID
        self.channel = LoopBound(JobsChannel(host: host.connection.value, instanceID: instanceID))
    }

    private func request(_ request: Request) async throws -> Response {
        let channel = self.channel
        return try await host.loop.await { done in
            channel.value.request(request) { done($0.mapError { $0 }) }
        }
    }

    private func jobAnswer(_ response: Response, to what: String) throws -> JobInfo {
        guard case .job(let info) = response else {
            throw TetherClientError(.protocolViolation, host: host.computerName, "unexpected answer to \(what): \(response)")
        }
        return info
    }

    /// Starts `script` (`"$@"` = `arguments`) in a copy of the session's shell and returns
    /// at once. The copy is a fork of the session's bash if it is idle, else waits for it
    /// (state `NotStarted`) — see docs/architecture.md, "Jobs".
    public func start(_ script: String, arguments: [String] = [], name: String? = nil) async throws -> JobInfo {
        try jobAnswer(try await request(.jobStart(JobStartRequest(script: script, arguments: arguments, name: name))),
                      to: "jobStart")
    }

    /// Every job of the session, oldest first.
    public func list() async throws -> [JobInfo] {
        let response = try await request(.jobList)
        guard case .jobList(let jobs) = response else {
            throw TetherClientError(.protocolViolation, host: host.computerName, "unexpected answer to jobList: \(response)")
        }
        return jobs
    }

    /// Returns once the job has ended.
    public func wait(jobID: UInt64) async throws -> JobInfo {
        try jobAnswer(try await request(.jobWait(jobID: jobID)), to: "jobWait")
    }

    /// SIGINT, SIGTERM, SIGKILL to the job's process group (2 s apart, while any of it is
    /// left); returns once it has ended (`Stopped`).
    public func stop(jobID: UInt64) async throws -> JobInfo {
        try jobAnswer(try await request(.jobStop(jobID: jobID)), to: "jobStop")
    }

    /// Forgets the job and its unread output; a running job only with `force` (stopped first).
    public func remove(jobID: UInt64, force: Bool = false) async throws {
        _ = try await request(.jobRemove(jobID: jobID, force: force))
    }

    /// The job's output no reader has acknowledged; with `follow`, then live until it
    /// ends. Consumed output is acknowledged (gone for the next receive) unless `keep`.
    public func receive(jobID: UInt64, follow: Bool = false, keep: Bool = false) async throws -> JobReception {
        let connection = host.connection
        let instanceID = self.instanceID
        let (info, core): (JobInfo, JobReceptionCore) = try await host.loop.await { done in
            let channel = JobReceiveChannel(host: connection.value, instanceID: instanceID, jobID: jobID,
                                            follow: follow, keep: keep)
            channel.start { done($0.mapError { $0 }) }
        }
        return JobReception(job: info, core: core)
    }

    /// Unbinds the channel (nothing happens to the jobs).
    public func close() async {
        let channel = self.channel
        _ = try? await host.loop.run { channel.value.close() }
    }
}

/// A job's output as `receive` delivers it.
public final class JobReception: Sendable {
    /// The job when the reception started.
    public let job: JobInfo
    let core: JobReceptionCore

    init(job: JobInfo, core: JobReceptionCore) {
        self.job = job
        self.core = core
    }

    public var output: OutputSequence { OutputSequence(queue: core.output) }

    /// How the job ended, if the reception followed it to its end (read `output` first).
    public var end: (state: JobState, exitStatus: Int32)? {
        get async throws { try await core.end.value }
    }
}

extension RemoteHost {
    /// The jobs of the session `instanceID` on this host.
    public func jobs(instanceID: String) -> RemoteJobs {
        RemoteJobs(host: self, instanceID: instanceID)
    }
}
