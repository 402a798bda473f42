import Glibc
import TetherIO
import TetherProtocol

/// The session's jobs, in the order they were started.
final class JobTable {
    private(set) var jobs: [Job] = []
    private var nextID: UInt64 = 1
    /// The job bash is forking right now (its driver file is the one bash sources).
    var forking: Job?
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
    var activeCount: Int { jobs.filter { !$0.hasEnded }.count }

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
