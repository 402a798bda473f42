import Glibc
import CTetherPosix
import TetherIO
import TetherProtocol

/// Jobs: a script run in a copy of the session's shell, beside its foreground commands,
/// with an output journal of its own (docs/architecture.md, "Jobs").
extension Session {
    /// Grace after SIGINT, then after SIGTERM, before the next signal of a `jobStop`.
    static let jobStopGrace: Double = 2

    // MARK: Channels

    /// `jobs {instanceID}` on channel N: binds it to this session's jobs (no claim).
    func bindJobs(from peer: PeerConnection, channel: UInt32, requestID: UInt32, instanceID: String) {
        guard instanceID.lowercased() == options.instanceID.lowercased() else {
            peer.respond(channel: channel, id: requestID, .failure(ErrorBody(.notFound,
                "this runspace serves session \(options.instanceID), not \(instanceID)")))
            return
        }
        guard peer.attachments[channel] == nil, peer.jobChannels[channel] == nil else {
            peer.respond(channel: channel, id: requestID, .failure(ErrorBody(.badRequest,
                "channel \(channel) is already bound; detach it first or use another channel")))
            return
        }
        peer.jobChannels[channel] = JobChannel(channel: channel, peer: peer)
        peer.respond(channel: channel, id: requestID, .session(info))
    }

    /// A request on a channel bound with `jobs`.
    func jobRequest(_ request: Request, on jobChannel: JobChannel, requestID: UInt32) {
        let peer = jobChannel.peer
        let channel = jobChannel.channel
        func answer(_ response: Response) { peer.respond(channel: channel, id: requestID, response) }
        func job(_ id: UInt64) -> Job? {
            if let job = jobTable[id] { return job }
            answer(.failure(ErrorBody(.notFound, "no job \(id) in session '\(options.name)' (tether job get lists them)")))
            return nil
        }
        switch request {
        case .jobStart(let start):
            if let refusal = refusal(ofJob: start, from: peer) { return answer(.failure(refusal)) }
            switch startJob(start) {
            case .success(let job): answer(.job(jobInfo(job)))
            case .failure(let error): answer(.failure(error))
            }
        case .jobList:
            answer(.jobList(jobTable.jobs.map(jobInfo)))
        case .jobReceive(let id, let follow):
            guard let job = job(id) else { return }
            if jobChannel.reception != nil {
                return answer(.failure(ErrorBody(.busy, "this channel is already receiving a job; use another channel")))
            }
            jobChannel.reception = JobChannel.Reception(job: job, nextSeq: job.journal.ackedSeq + 1,
                                                        follow: follow, caughtUpAt: job.journal.lastSeq)
            jobChannel.acknowledgedJob = job
            answer(.job(jobInfo(job)))
            pumpJobChannel(jobChannel)
            updateJobReading(job)
        case .jobWait(let id):
            guard let job = job(id) else { return }
            whenJobEnded(job) { answer(.job($0)) }
        case .jobStop(let id):
            guard let job = job(id) else { return }
            stopJob(job)
            whenJobEnded(job) { answer(.job($0)) }
        case .jobRemove(let id, let force):
            guard let job = job(id) else { return }
            if job.hasEnded {
                removeJob(job)
                return answer(.done)
            }
            guard force else {
                return answer(.failure(ErrorBody(.busy,
                    "job \(id) ('\(job.name)') is \(jobInfo(job).state.rawValue); stop it first or remove it with --force")))
            }
            stopJob(job)
            whenJobEnded(job) { [unowned self] _ in
                self.removeJob(job)
                answer(.done)
            }
        case .detach:
            dropJobChannel(jobChannel)
            answer(.done)
        default:
            answer(.failure(ErrorBody(.badRequest,
                "\(request.kindName) is not a job request; channel \(channel) is bound to the session's jobs")))
        }
    }

    /// `ack seq` on a jobs channel: acknowledges the job it receives.
    func acknowledgeJob(_ seq: UInt64, on jobChannel: JobChannel) {
        guard let job = jobChannel.acknowledgedJob else { return }
        if job.journal.acknowledge(through: seq) { updateJobReading(job) }
    }

    func dropJobChannel(_ jobChannel: JobChannel) {
        jobChannel.peer.jobChannels[jobChannel.channel] = nil
        let job = jobChannel.reception?.job
        jobChannel.reception = nil
        if let job { updateJobReading(job) }
    }

    /// Sends a jobs channel what its reception is owed, until the connection backs up.
    func pumpJobChannel(_ jobChannel: JobChannel) {
        guard var reception = jobChannel.reception else { return }
        let job = reception.job
        let peer = jobChannel.peer
        let connection = peer.connection
        while !connection.isClosed && !connection.isBackedUp,
              let record = job.journal.first(atOrAfter: reception.nextSeq) {
            if !reception.follow && record.seq > reception.caughtUpAt { break }
            peer.send(record, channel: jobChannel.channel)
            job.highestSentSeq = max(job.highestSentSeq, record.seq)
            reception.nextSeq = record.seq + 1
        }
        jobChannel.reception = reception
        guard !connection.isClosed, !connection.isBackedUp else { return }
        let sentAll = job.journal.first(atOrAfter: reception.nextSeq) == nil
        if !reception.follow && (reception.nextSeq > reception.caughtUpAt || sentAll) {
            jobChannel.reception = nil
            peer.send(Record(seq: job.journal.lastSeq, kind: .jobCaughtUp, body: []), channel: jobChannel.channel)
        } else if reception.follow, sentAll, case .ended(let state, let status) = job.phase {
            jobChannel.reception = nil
            peer.send(Record.jobEnded(seq: job.journal.lastSeq, state: state, exitStatus: status), channel: jobChannel.channel)
        }
    }

    func pumpJobChannels(of job: Job) {
        for peer in peers.values {
            for jobChannel in peer.jobChannels.values where jobChannel.reception?.job === job {
                pumpJobChannel(jobChannel)
            }
        }
    }

    /// The session's buffering changed (a `release`): it applies to the jobs' journals too.
    func jobsConfigured() {
        for job in jobTable.jobs {
            if outputBuffering == .drop {
                job.journal.dropOldestOutput(toFit: bufferLimit, sentThrough: job.highestSentSeq)
                pumpJobChannels(of: job)
            }
            updateJobReading(job)
        }
    }

    /// A connection drained: its job receptions go on, and jobs it held back may read again.
    func jobPeerDrained(_ peer: PeerConnection) {
        for jobChannel in peer.jobChannels.values { pumpJobChannel(jobChannel) }
        for job in jobTable.jobs { updateJobReading(job) }
    }

    // MARK: Starting

    func startJob(_ request: JobStartRequest) -> Result<Job, ErrorBody> {
        if let why = DriverLine.unusableReason(request.script) {
            return .failure(ErrorBody(.badRequest, "the script \(why)"))
        }
        for (index, argument) in request.arguments.enumerated() {
            if let why = DriverLine.unusableReason(argument) {
                return .failure(ErrorBody(.badRequest, "argument \(index + 1) \(why)"))
            }
        }
        if let refusal = refusalForNewCommands() {
            return .failure(refusal)
        }
        guard jobTable.activeCount < jobTable.limit else {
            return .failure(ErrorBody(.busy, "session '\(options.name)' already runs \(jobTable.activeCount) jobs, its limit "
                + "(set with tether new --job-limit); wait for one to end or stop one"))
        }
        let job = jobTable.add(name: request.name, script: request.script, arguments: request.arguments)
        var bytes = Array(DriverLine.scriptFile(request.script).utf8)
        if bytes.last != 0x0a { bytes.append(0x0a) }
        do {
            try workDirectory.ensureExists()
            try writeFile(workDirectory.path + "/" + JobScript.scriptName(job.id), bytes)
        } catch {
            jobTable.remove(job)
            return .failure(ErrorBody(.internal, "could not write the job's script in \(workDirectory.path): \(error)"))
        }
        lastUsedAt = WallClock.now()
        jobTable.snapshotsWanted = true
        if running != nil && jobTable.snapshotCoversRunningCommand, let snapshot = jobTable.snapshot {
            // bash is busy with a command: a new bash loads the state that command started from.
            do {
                try spawnFromSnapshot(job, snapshot: snapshot)
            } catch {
                job.closePipes()
                jobEnded(job, state: .failed, exitStatus: 127, message: "tether: the job could not start: \(error)\n")
            }
        } else {
            startPendingJobs()
        }
        publishStatus()
        return .success(job)
    }

    /// Forks the oldest pending job if bash is free. Returns true if bash is now busy with it.
    @discardableResult
    func startPendingJobs() -> Bool {
        guard running == nil, jobTable.forking == nil, interpreter.isIdle, life == .running,
              !terminating, !shuttingDown, let job = jobTable.firstPending else { return false }
        do {
            try fork(job)
            return true
        } catch {
            job.closePipes()
            jobEnded(job, state: .failed, exitStatus: 127,
                     message: "tether: the job could not start: \(error)\n")
            return startPendingJobs()
        }
    }

    private func outputPipe(_ job: Job, fd: Int32, kind: Record.Kind) -> OutputPipe {
        setPipeCapacity(fd)
        let pipe = OutputPipe(reactor: reactor, fd: fd, kind: kind)
        pipe.onData = { [unowned self, unowned job] bytes in self.jobOutput(job, kind, bytes) }
        pipe.mayRead = { [unowned self, unowned job] in self.jobMayRead(job) }
        return pipe
    }

    /// The job's stream FIFO: its records go to its journal, after what its stdout and
    /// stderr already hold (as `BashInterpreter` orders the session's).
    private func streamPipe(_ job: Job) throws -> StreamPipe {
        let pipe = try StreamPipe(reactor: reactor, path: workDirectory.path + "/" + JobScript.streamsName(job.id))
        pipe.onRecord = { [unowned self, unowned job] record in self.jobOutput(job, record.kind, record.body) }
        pipe.onReadable = { [unowned self, unowned job] in
            guard self.jobMayRead(job), self.drainJobOutputWrittenSoFar(job) else {
                job.streams?.setWatching(false)  // `updateJobReading` resumes it
                return
            }
            job.streams?.readOnce()
        }
        return pipe
    }

    private func drainJobOutputWrittenSoFar(_ job: Job) -> Bool {
        job.stdout?.noteOwed()
        job.stderr?.noteOwed()
        return (job.stdout?.readOwed() ?? true) && (job.stderr?.readOwed() ?? true)
    }

    /// A job started while bash runs a command: `bash --noprofile --norc` loads a copy of
    /// the last snapshot (taken while the session was idle, before that command), in a
    /// process group of its own, with plain pipes for stdout and stderr.
    private func spawnFromSnapshot(_ job: Job, snapshot: [UInt8]) throws {
        let base = workDirectory.path + "/"
        let copy = base + JobScript.snapshotCopyName(job.id)
        try writeFile(copy, snapshot)
        job.streams = try streamPipe(job)
        var fds: [Int32] = []
        for _ in 0..<2 {
            var pair: [Int32] = [0, 0]
            guard tether_pipe2(&pair, Int32(O_CLOEXEC)) == 0 else {
                fds.forEach { close($0) }
                throw SystemError.last("pipe2 (job output)")
            }
            fds += pair
        }
        var options = Spawn.Options()
        options.fileActions = [1: fds[1], 2: fds[3]]
        options.devNull = [0]
        options.newProcessGroup = true
        // The snapshot's exported variables are the job's environment, nothing else.
        options.environment = []
        let pid: pid_t
        do {
            pid = try Spawn.spawn(path: jobTable.bashPath, arguments: ["bash", "--noprofile", "--norc", "-c",
                JobScript.snapshotCommand(snapshotPath: copy, scriptPath: base + JobScript.scriptName(job.id),
                                          streamsPath: base + JobScript.streamsName(job.id)), "bash"]
                + job.arguments, options: options)
        } catch {
            fds.forEach { close($0) }
            throw error
        }
        close(fds[1])
        close(fds[3])
        job.stdout = outputPipe(job, fd: fds[0], kind: .stdout)
        job.stderr = outputPipe(job, fd: fds[2], kind: .stderr)
        job.phase = .running(pid: pid)
        job.shellCopy = .snapshot
        if let exit = jobTable.takeUnclaimedExit(pid: pid) {
            jobReaped(job, exit)
        } else {
            updateJobReading(job)
        }
    }

    private func fork(_ job: Job) throws {
        let base = workDirectory.path + "/"
        var pipes: [OutputPipe] = []
        for (name, kind) in [(JobScript.stdoutName(job.id), Record.Kind.stdout), (JobScript.stderrName(job.id), .stderr)] {
            let path = base + name
            unlink(path)
            guard mkfifo(path, 0o600) == 0 else { throw SystemError.last("mkfifo \(path)") }
            // Opened before bash opens the other end, so its open(2) doesn't wait for us.
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw SystemError.last("open \(path)") }
            pipes.append(outputPipe(job, fd: fd, kind: kind))
        }
        job.stdout = pipes[0]
        job.stderr = pipes[1]
        job.streams = try streamPipe(job)
        let gate = base + JobScript.gateName(job.id)
        unlink(gate)
        guard mkfifo(gate, 0o600) == 0 else { throw SystemError.last("mkfifo \(gate)") }
        // Read-write: the job's open(2) for reading doesn't wait, and the line we write
        // stays in the FIFO until it reads it.
        job.gateFD = open(gate, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard job.gateFD >= 0 else { throw SystemError.last("open \(gate)") }
        try workDirectory.driver.write(Array(JobScript.forkDriver(jobID: job.id, arguments: job.arguments).utf8))
        job.phase = .forking
        jobTable.forking = job
        interpreter.runPreparedCommand(terminal: nil)
    }

    // MARK: Snapshots

    /// After a command, in sessions that have started a job (the others never pay for
    /// it): a snapshot at once, unless a command waits. A job started during the next
    /// command then runs beside it from exactly the state that command found. Returns
    /// true if bash is busy writing it.
    func snapshotAfterCommand() -> Bool {
        guard jobTable.snapshotsWanted, waiting.isEmpty else { return false }
        return takeSnapshot()
    }

    @discardableResult
    private func takeSnapshot(beforeWaitingCommands: Bool = false) -> Bool {
        guard running == nil, !jobTable.isShellBusy, waiting.isEmpty || beforeWaitingCommands, interpreter.isIdle,
              life == .running, !terminating, !shuttingDown, !jobTable.snapshotIsCurrent else { return false }
        do {
            if jobTable.snapshotFile == nil {
                let file = RewritableFile(path: workDirectory.path + "/" + JobScript.snapshotName)
                try file.write([])
                jobTable.snapshotFile = file
            }
            try workDirectory.driver.write(Array(JobScript.snapshotDriver().utf8))
        } catch {
            return false  // no snapshot: jobs started during commands wait for bash instead
        }
        jobTable.snapshotting = true
        interpreter.runPreparedCommand(terminal: nil)
        return true
    }

    private func snapshotFinished() {
        jobTable.snapshotting = false
        let path = workDirectory.path + "/" + JobScript.snapshotName
        if let bytes = readFile(path) {
            jobTable.snapshot = bytes
            jobTable.snapshotIsCurrent = true
        }
    }

    /// bash's status line arrived for one of ours (a fork or a snapshot): true if so. The
    /// next pending job or waiting command may start.
    func shellOperationFinished(status: Int32) -> Bool {
        if jobTable.snapshotting {
            snapshotFinished()
            if !startPendingJobs() { startNextWaiting() }
            return true
        }
        guard let job = jobTable.forking else { return false }
        jobTable.forking = nil
        let base = workDirectory.path + "/"
        let pidText = readSmallFile(base + JobScript.pidName(job.id))
        // The gate stays until the job ends: the job may not have opened it yet.
        for name in [JobScript.pidName(job.id), JobScript.stdoutName(job.id), JobScript.stderrName(job.id)] {
            unlink(base + name)
        }
        if status == 0, let pid = pidText.flatMap({ pid_t($0.trimmingWhitespace()) }), pid > 0 {
            job.phase = .running(pid: pid)
            job.shellCopy = .fork
            // The subshell has exited: the job is ours to reap; let it go.
            let line: [UInt8] = [0x0a]
            _ = line.withUnsafeBytes { write(job.gateFD, $0.baseAddress, 1) }
            if job.stopRequested { signalStop(job, step: 0) }
            if let exit = jobTable.takeUnclaimedExit(pid: pid) {
                jobReaped(job, exit)
            } else {
                updateJobReading(job)
            }
        } else {
            job.closePipes()
            jobEnded(job, state: .failed, exitStatus: status == 0 ? 127 : status,
                     message: "tether: the session's shell could not start the job (status \(status))\n")
        }
        // The first job of a session takes a snapshot at once (a millisecond): a job
        // started during the next command can then run beside it.
        if !startPendingJobs() && !takeSnapshot(beforeWaitingCommands: true) { startNextWaiting() }
        return true
    }

    // MARK: Output and its end

    private func jobOutput(_ job: Job, _ kind: Record.Kind, _ bytes: [UInt8]) {
        job.journal.append(kind, body: bytes)
        if outputBuffering == .drop {
            job.journal.dropOldestOutput(toFit: bufferLimit, sentThrough: job.highestSentSeq)
        }
        pumpJobChannels(of: job)
    }

    /// As `mayReadOutput` for the session: not while the job's journal is full in `block`
    /// mode, nor while a channel following it live is backed up.
    func jobMayRead(_ job: Job) -> Bool {
        if shuttingDown { return true }
        if isJobBlocked(job) { return false }
        for peer in peers.values where peer.connection.isBackedUp {
            if peer.jobChannels.values.contains(where: { $0.isLive(for: job) }) { return false }
        }
        return true
    }

    func isJobBlocked(_ job: Job) -> Bool {
        outputBuffering == .block && job.journal.unackedBytes >= bufferLimit
    }

    func updateJobReading(_ job: Job) {
        switch job.phase {
        case .running, .draining:
            let allowed = jobMayRead(job)
            job.stdout?.setWatching(allowed)
            job.stderr?.setWatching(allowed)
            job.streams?.setWatching(allowed)
            if allowed { completeJobIfDrained(job) }
        case .pending, .forking, .ended:
            break
        }
    }

    /// A child that isn't bash was reaped (the runspace is a subreaper).
    func childReaped(pid: pid_t, status: ExitStatus) {
        if let job = jobTable.job(withPID: pid), case .running = job.phase {
            jobReaped(job, status)
        } else {
            jobTable.noteUnclaimedExit(pid: pid, status: status)
        }
    }

    private func jobReaped(_ job: Job, _ status: ExitStatus) {
        guard case .running(let pid) = job.phase else { return }
        job.phase = .draining(pid: pid, status)
        job.stdout?.noteOwed()
        job.stderr?.noteOwed()
        completeJobIfDrained(job)
    }

    /// Reports the end of a reaped job once what it wrote before exiting has been read.
    /// What processes it left behind write later is not collected (they keep running in
    /// its group until a stop, a remove or the session's end).
    private func completeJobIfDrained(_ job: Job) {
        guard case .draining(let pid, let status) = job.phase, jobMayRead(job) else { return }
        let drained = (job.stdout?.readOwed() ?? true) && (job.stderr?.readOwed() ?? true)
        guard drained else { return }
        job.streams?.readAvailable()  // what it wrote there before it exited
        job.closePipes()
        let state: JobState = job.stopRequested ? .stopped : (status.shellStatus == 0 ? .completed : .failed)
        if job.stopRequested {
            // A stop ends the whole group, stragglers included.
            kill(-pid, SIGKILL)
        }
        jobEnded(job, state: state, exitStatus: status.shellStatus, message: nil)
    }

    private func jobEnded(_ job: Job, state: JobState, exitStatus: Int32, message: String?) {
        if let message { job.journal.append(.stderr, body: Array(message.utf8)) }
        if let timer = job.stopTimer { reactor.cancel(timer) }
        job.stopTimer = nil
        job.phase = .ended(state, exitStatus: exitStatus)
        job.endedAt = WallClock.now()
        lastUsedAt = WallClock.now()
        unlink(workDirectory.path + "/" + JobScript.scriptName(job.id))
        unlink(workDirectory.path + "/" + JobScript.gateName(job.id))
        unlink(workDirectory.path + "/" + JobScript.snapshotCopyName(job.id))
        publishStatus()
        pumpJobChannels(of: job)
        let info = jobInfo(job)
        let waiters = job.endWaiters
        job.endWaiters.removeAll()
        waiters.forEach { $0(info) }
    }

    private func whenJobEnded(_ job: Job, _ body: @escaping (JobInfo) -> Void) {
        if job.hasEnded {
            body(jobInfo(job))
        } else {
            job.endWaiters.append(body)
        }
    }

    // MARK: Stop and remove

    /// SIGINT, then SIGTERM, then SIGKILL to the job's process group, each after
    /// `jobStopGrace` if the group is still there.
    func stopJob(_ job: Job) {
        guard !job.hasEnded, !job.stopRequested else { return }
        job.stopRequested = true
        switch job.phase {
        case .pending:
            job.closePipes()
            jobEnded(job, state: .stopped, exitStatus: 128 + SIGINT, message: nil)
        case .running:
            signalStop(job, step: 0)
        case .draining:
            break
        case .forking, .ended:
            break  // a fork finishing sees stopRequested and starts the signals
        }
    }

    private func signalStop(_ job: Job, step: Int) {
        guard let pid = job.pid else { return }
        let signals = [SIGINT, SIGTERM, SIGKILL]
        guard step < signals.count else { return }
        kill(-pid, signals[step])
        if signals[step] != SIGKILL { kill(-pid, SIGCONT) }
        guard step + 1 < signals.count else { return }
        job.stopTimer = reactor.schedule(after: Session.jobStopGrace) { [unowned self, unowned job] in
            job.stopTimer = nil
            guard job.pid != nil else { return }
            self.signalStop(job, step: step + 1)
        }
    }

    func removeJob(_ job: Job) {
        for peer in peers.values {
            for jobChannel in peer.jobChannels.values where jobChannel.reception?.job === job {
                jobChannel.reception = nil
                let status = job.exitStatus ?? 0
                peer.send(Record.jobEnded(seq: job.journal.lastSeq, state: jobInfo(job).state, exitStatus: status),
                          channel: jobChannel.channel)
            }
        }
        job.closePipes()
        jobTable.remove(job)
    }

    /// The session ends: every job's group gets SIGTERM now (SIGKILL at `killJobGroups`).
    func terminateJobs() {
        for job in jobTable.jobs {
            job.stopRequested = true
            if let pid = job.pid {
                kill(-pid, SIGTERM)
                kill(-pid, SIGCONT)
            } else if case .pending = job.phase {
                jobEnded(job, state: .stopped, exitStatus: 128 + SIGTERM, message: nil)
            }
        }
    }

    func killJobGroups() {
        for job in jobTable.jobs {
            if let pid = job.pid { kill(-pid, SIGKILL) }
        }
    }

    // MARK: Info

    func jobInfo(_ job: Job) -> JobInfo {
        JobInfo(id: job.id, instanceID: job.instanceID, name: job.name, state: job.state(blocked: isJobBlocked(job)),
                hasMoreData: job.hasMoreData, unreadBytes: job.journal.unackedBytes, command: job.script,
                arguments: job.arguments, exitStatus: job.exitStatus, startedAt: job.startedAt,
                endedAt: job.endedAt, shellCopy: job.shellCopy, pid: job.pid,
                sessionInstanceID: options.instanceID, sessionName: options.name)
    }

    // MARK: Files

    private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SystemError.last("open \(path)") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("write \(path)")
            }
            offset += n
        }
    }

    private func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }

    private func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}
