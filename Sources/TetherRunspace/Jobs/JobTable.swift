import Glibc
import TetherIO
import TetherProtocol

/// The session's jobs, in the order they were started.
final class JobTable {
    private(set) var jobs: [Job] = []
    private var nextID: UInt64 = 1
    /// The job bash is forking right now (its driver file is the one bash sources).
    var forking: Job?
    /// bash is writing a snapshot of its state right now.
    var snapshotting = false
    /// bash runs one of ours (a fork or a snapshot), not a command.
    var isShellBusy: Bool { forking != nil || snapshotting }

    // MARK: Snapshots (docs/architecture.md, "Jobs")

    /// The last snapshot of the session's shell (bash text), once a job made them wanted.
    var snapshot: [UInt8]?
    /// No command has run since `snapshot` was taken.
    var snapshotIsCurrent = false
    /// `snapshot` was current when the running command started: a job started now can
    /// load it and see the session exactly as that command found it.
    var snapshotCoversRunningCommand = false
    /// Snapshots are taken only in sessions that have started a job.
    var snapshotsWanted = false
    /// Where bash writes its snapshot: an in-memory file (a real file's truncation can
    /// wait for writeback, milliseconds).
    var snapshotFile: RewritableFile?
    /// The session's bash, which a job from a snapshot runs too.
    var bashPath = "/bin/bash"

    func commandStarting() {
        snapshotCoversRunningCommand = snapshot != nil && snapshotIsCurrent
        snapshotIsCurrent = false
    }
    /// Jobs that may run at once (`create`'s `jobLimit`).
    var limit: Int
    /// Children reaped before anyone knew they were a job's (a job can end before the
    /// status line that names its pid arrives), newest last; bounded.
    private var unclaimedExits: [(pid: pid_t, status: ExitStatus)] = []
    static let unclaimedExitsKept = 64

    init(limit: Int) {
        self.limit = limit
    }

    func add(name: String?, script: String, arguments: [String]) -> Job {
        let job = Job(id: nextID, name: name, script: script, arguments: arguments)
        nextID += 1
        jobs.append(job)
        return job
    }

    func remove(_ job: Job) {
        jobs.removeAll { $0 === job }
    }

    subscript(id: UInt64) -> Job? {
        jobs.first { $0.id == id }
    }

    func job(withPID pid: pid_t) -> Job? {
        jobs.first { $0.pid == pid }
    }

    /// Jobs that count against the limit: not ended.
    var activeCount: Int { jobs.reduce(0) { $0 + ($1.hasEnded ? 0 : 1) } }

    var firstPending: Job? {
        jobs.first { if case .pending = $0.phase { return true } else { return false } }
    }

    func noteUnclaimedExit(pid: pid_t, status: ExitStatus) {
        unclaimedExits.append((pid, status))
        if unclaimedExits.count > JobTable.unclaimedExitsKept { unclaimedExits.removeFirst() }
    }

    func takeUnclaimedExit(pid: pid_t) -> ExitStatus? {
        guard let index = unclaimedExits.lastIndex(where: { $0.pid == pid }) else { return nil }
        return unclaimedExits.remove(at: index).status
    }
}
