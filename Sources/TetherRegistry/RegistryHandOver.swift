import Glibc
import TetherIO

/// How a registry hands over to a newly installed binary (docs/architecture.md,
/// "Upgrades"). An upgrade renames a new file over the one the registry was started from;
/// the running registry goes on serving with its old image. Once nothing depends on it —
/// no subsystem connected, no runspace starting or being removed — it re-executes the new
/// file in place: same pid, and its pid lock and listening sockets stay open across the
/// exec, so no second registry can start and a client connecting meanwhile just waits in
/// the socket's backlog. The new image reloads the table and re-adopts every runspace
/// (the protocol negotiation lets it speak to those of the earlier release).
struct RegistryImage {
    /// The file this registry was started from, as it was named then.
    let path: String
    private let device: UInt64
    private let inode: UInt64

    /// The running image, if its file is still in place (not already replaced or removed).
    static func current() -> RegistryImage? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = readlink(Spawn.runningImage, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n], as: UTF8.self)
        var running = stat()
        guard !path.hasSuffix(" (deleted)"), stat(Spawn.runningImage, &running) == 0 else { return nil }
        return RegistryImage(path: path, device: UInt64(running.st_dev), inode: UInt64(running.st_ino))
    }

    /// The identity of the file at `path` now, if it is an executable regular file other
    /// than the running image — a newly installed binary.
    func replacement() -> FileIdentity? {
        var now = stat()
        guard stat(path, &now) == 0, now.st_mode & S_IFMT == S_IFREG, access(path, X_OK) == 0 else { return nil }
        let identity = FileIdentity(device: UInt64(now.st_dev), inode: UInt64(now.st_ino))
        return identity == FileIdentity(device: device, inode: inode) ? nil : identity
    }

    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
    }
}

enum RegistryHandOver {
    /// "LOCK,REGISTRY,GATEWAY": the descriptors an earlier image of this registry left
    /// open across its exec (GATEWAY -1 if it had none).
    static let environmentKey = "TETHER_REGISTRY_HANDOVER"

    struct Inherited {
        var lock: Int32
        var registry: Int32
        var gateway: Int32?
    }

    /// What the earlier image passed on, if this registry is one's successor. Read once:
    /// the variable is removed so the runspaces and subsystems it spawns never see it.
    static func inherited() -> Inherited? {
        guard let value = getenv(environmentKey).map({ String(cString: $0) }) else { return nil }
        unsetenv(environmentKey)
        let fds = value.split(separator: ",").compactMap { Int32($0) }
        guard fds.count == 3, fds[0] >= 0, fds[1] >= 0 else { return nil }
        for fd in fds where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return Inherited(lock: fds[0], registry: fds[1], gateway: fds[2] >= 0 ? fds[2] : nil)
    }

    /// Whether `path` answers `--version` like a tether-subsystem (within 5 s): a broken
    /// or foreign file is not exec'd into, which would end the registry.
    static func answersLikeASubsystem(_ path: String) -> Bool {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { return false }
        pipeFDs.forEach { setCloseOnExec($0) }  // fd 1 of the child is a dup2, without it
        defer { close(pipeFDs[0]) }
        var options = Spawn.Options()
        options.fileActions = [1: pipeFDs[1]]
        options.devNull = [0, 2]
        // The registry ignores SIGCHLD, so the child is reaped by the kernel; its end is
        // the pipe's end of file.
        let spawned = (try? Spawn.spawn(path: path, arguments: [path, "--version"], options: options)) != nil
        close(pipeFDs[1])
        guard spawned else { return false }
        var output: [UInt8] = []
        let deadline = Reactor.now() + 5_000_000_000
        while Reactor.now() < deadline, output.count < 4096 {
            var poller = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) >= 0 || errno == EINTR else { break }
            guard poller.revents != 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1024)
            let n = read(pipeFDs[0], &chunk, chunk.count)
            if n <= 0 { break }
            output += chunk[0..<n]
        }
        return String(decoding: output, as: UTF8.self).hasPrefix("tether-subsystem ")
    }

    /// Re-executes `path` as this registry, keeping `lock`, `registry` and `gateway` open.
    /// Returns only if the exec failed (the error), with the descriptors as they were.
    static func exec(_ path: String, lock: Int32, registry: Int32, gateway: Int32?) -> SystemError {
        let kept = [lock, registry] + (gateway.map { [$0] } ?? [])
        for fd in kept { _ = fcntl(fd, F_SETFD, 0) }
        setenv(environmentKey, "\(lock),\(registry),\(gateway ?? -1)", 1)
        // The same command line, without the ready pipe its starter read long ago.
        var arguments = [path]
        var skipNext = false
        for argument in CommandLine.arguments.dropFirst() {
            if skipNext { skipNext = false; continue }
            if argument == "--ready-fd" { skipNext = true; continue }
            if argument.hasPrefix("--ready-fd=") { continue }
            arguments.append(argument)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        execv(path, argv)
        let error = SystemError.last("exec \(path)")
        argv.forEach { free($0) }
        unsetenv(environmentKey)
        for fd in kept { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return error
    }
}
