import ArgumentParser
import Glibc
import TetherClient
import TetherProtocol

/// Which jobs a `tether job` verb acts on, within the sessions the session selector picks.
struct JobSelectorArguments: ParsableArguments {
    @Option(name: .customLong("job-id"), help: ArgumentHelp("Jobs with these Ids (per session): N, A..B or a comma list.", valueName: "ID"))
    var jobID: IdSet?

    @Option(name: .customLong("job-name"), help: ArgumentHelp("Jobs whose name matches PATTERN (* and ? wildcards).", valueName: "PATTERN"))
    var jobName: String?

    @Option(name: .customLong("job-instance-id"), help: ArgumentHelp("The job with this instance id (UUID).", valueName: "UUID"))
    var jobInstanceID: String?

    @Option(help: ArgumentHelp("Jobs in this state: NotStarted, Running, Blocked, Completed, Failed or Stopped.", valueName: "STATE"))
    var state: JobState?

    var hasFilter: Bool { jobID != nil || jobName != nil || jobInstanceID != nil || state != nil }

    func matches(_ job: JobInfo) -> Bool {
        if let jobID, !jobID.contains(Int(job.id)) { return false }
        if let jobName, !wildcardMatch(jobName, job.name) { return false }
        if let jobInstanceID, job.instanceID.lowercased() != jobInstanceID.lowercased() { return false }
        if let state, job.state != state { return false }
        return true
    }
}

extension JobState: ExpressibleByArgument {
    public init?(argument: String) {
        guard let state = JobState.allCases.first(where: { $0.rawValue.lowercased() == argument.lowercased() }) else {
            return nil
        }
        self = state
    }
}

/// One job a verb acts on, with the session and computer it belongs to.
struct JobTarget: Sendable {
    var session: SessionTarget
    var jobs: RemoteJobs
    var info: JobInfo
    var computerName: String { session.computerName }
    /// `[computer:job]`, for output of several jobs.
    var label: String { "\(computerName):\(info.name)" }
}

/// Sessions `tether invoke --as-job --computer HOST` creates: named with this prefix, and
/// removed by `tether job remove` with their last job.
enum TemporaryJobSession {
    static let namePrefix = "asjob-"
    /// Kept until its job is removed: the idle timeout (counted once the job has ended)
    /// is 30 days rather than the default 2 hours.
    static let idleTimeout: Double = 30 * 86400
    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(namePrefix) }
}

extension CommandContext {
    /// The sessions a job verb looks in: the selector's, or (without one) every session
    /// in this client's list.
    func jobSessions(_ selector: SelectorArguments, noneIsAnError: Bool) async throws -> [SessionTarget] {
        if selector.hasSessionFilter || !selector.computers.isEmpty {
            return try await resolve(selector)
        }
        let all = try store.all()
        if all.isEmpty && noneIsAnError {
            throw TetherClientError(.usage, "this client's list has no sessions; select them with --name, --id, --instance-id or --computer HOST")
        }
        return all.map { SessionTarget(local: $0) }
    }

    /// The selected jobs, in session order then job order. Sessions that are closed or
    /// broken are skipped quietly when the session selector did not name them.
    /// `get` lists nothing for no session or job, as Get-Job does; the verbs that act
    /// say so (a usage error when nothing matched and no host failed).
    func resolveJobs(_ selector: SelectorArguments, _ jobSelector: JobSelectorArguments,
                     listing: Bool = false) async throws -> [JobTarget] {
        let sessions = try await jobSessions(selector, noneIsAnError: !listing)
        let quiet = !selector.hasSessionFilter
        let found: [[JobTarget]] = await concurrentMap(sessions) { session in
            do {
                let host = try await pool.host(session.computerName)
                let jobs = host.jobs(instanceID: session.instanceID)
                return try await jobs.list().filter(jobSelector.matches).map {
                    JobTarget(session: session, jobs: jobs, info: $0)
                }
            } catch let error as TetherClientError where quiet && [.sessionClosed, .sessionBroken, .notFound].contains(error.remoteCode) {
                return []
            } catch {
                failures.report(error, host: session.computerName)
                return []
            }
        }
        let targets = found.flatMap { $0 }
        if !listing && targets.isEmpty && failures.isEmpty {
            throw TetherClientError(.usage, "no job matches; see tether job get")
        }
        return targets
    }
}

enum JobTableOutput {
    static func render(_ targets: [JobTarget]) -> String {
        var lines: [[String]] = [["Id", "Name", "State", "HasMoreData", "Location", "Session", "Command"]]
        lines.append(lines[0].map { String(repeating: "-", count: $0.count) })
        for target in targets {
            let job = target.info
            var command = ([job.command] + job.arguments).joined(separator: " ")
                .split(whereSeparator: { $0 == "\n" }).joined(separator: "; ")
            if command.count > 60 { command = String(command.prefix(59)) + "…" }
            lines.append([String(job.id), job.name, job.state.rawValue, job.hasMoreData ? "True" : "False",
                          target.computerName, target.session.name, command])
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for line in lines { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var text = ""
        for line in lines {
            for (i, cell) in line.enumerated() {
                let padding = String(repeating: " ", count: widths[i] - cell.count)
                if i > 0 { text += " " }
                if i == 0 { text += padding + cell } else if i == line.count - 1 { text += cell } else { text += cell + padding }
            }
            text += "\n"
        }
        return text
    }

    /// `--json` (docs/json.md): one object per job, then the failures as error objects.
    static func json(_ targets: [JobTarget], failures: [Failures.Entry] = []) -> String {
        let time = SessionTable.TimeFormatter()
        var out = PrettyJSON(reservingCapacity: 64 + targets.count * 600)
        out.beginArray()
        for target in targets {
            let job = target.info
            out.element()
            out.beginObject()
            out.key("arguments"); out.beginArray()
            for argument in job.arguments { out.element(); out.string(argument) }
            out.endArray()
            out.key("command"); out.string(job.command)
            out.key("endedAt"); if let ended = job.endedAt { out.string(time.string(ended)) } else { out.null() }
            out.key("error"); out.null()
            out.key("exitStatus"); if let status = job.exitStatus { out.integer(Int(status)) } else { out.null() }
            out.key("hasMoreData"); out.bool(job.hasMoreData)
            out.key("id"); out.integer(Int(job.id))
            out.key("instanceId"); out.string(job.instanceID)
            out.key("location"); out.string(target.computerName)
            out.key("name"); out.string(job.name)
            out.key("pid"); if let pid = job.pid { out.integer(Int(pid)) } else { out.null() }
            out.key("sessionInstanceId"); out.string(job.sessionInstanceID)
            out.key("sessionName"); out.string(job.sessionName)
            out.key("shellCopy"); out.optionalString(job.shellCopy?.rawValue)
            out.key("startedAt"); out.string(time.string(job.startedAt))
            out.key("state"); out.string(job.state.rawValue)
            out.key("unreadBytes"); out.integer(job.unreadBytes)
            out.endObject()
        }
        FailureJSON.append(failures, to: &out)
        out.endArray()
        return String(decoding: out.bytes, as: UTF8.self) + "\n"
    }

    static func print(_ targets: [JobTarget], json: Bool, failures: Failures) {
        if json {
            Terminal.shared.out(Self.json(targets, failures: failures.entries))
        } else if !targets.isEmpty {
            Terminal.shared.out(render(targets))
        }
    }
}
