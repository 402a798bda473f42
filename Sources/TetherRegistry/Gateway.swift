import Glibc
import TetherIO

/// The registry's second socket, `gateway.sock`: the way in for a client that already
/// knows this host. sshd connects it for an OpenSSH `direct-streamlocal@openssh.com`
/// channel (as the logged-in user, so the peer-uid check holds), and each connection gets
/// a subsystem of its own — this same image in `serve --gateway` mode, with the socket as
/// its stdin and stdout. That is what sshd's Subsystem line would have started, without
/// the login shell sshd runs it through (the user's rc files: ~250 ms on a machine whose
/// .bashrc initialises pyenv) and without sshd's session setup. Resuming after a cut link
/// is where that time matters most.
///
/// The registry only hands the socket over: it is out of the data path at once, and a
/// subsystem that dies takes only its own connection with it, as under sshd.
final class Gateway {
    let listener: UnixListener

    /// The listening socket (kept open across a hand-over to a new image).
    var fd: Int32 { listener.fd }

    init(reactor: Reactor, paths: HostPaths, log: HostLog, inheritedFD: Int32? = nil) throws {
        // A gateway socket left by a registry that was killed is replaced: the pid lock
        // already proved no other registry serves these directories.
        if inheritedFD == nil { unlink(paths.gatewaySocket) }
        listener = try UnixListener(reactor: reactor, path: paths.gatewaySocket, inheritedFD: inheritedFD, onAccept: { fd in
            Gateway.startSubsystem(on: fd, paths: paths, log: log)
        }, onRefused: { error in
            log.write("gateway refused a connection: \(error)")
        })
    }

    func close() {
        listener.close()
    }

    private static func startSubsystem(on fd: Int32, paths: HostPaths, log: HostLog) {
        defer { Glibc.close(fd) }
        var options = Spawn.Options()
        options.fileActions = [0: fd, 1: fd]
        // The subsystem logs to the host log; nothing it could print belongs on the wire.
        options.devNull = [2]
        let arguments = [
            Spawn.currentExecutable(), "serve", "--gateway",
        ] + paths.roleArguments
        do {
            // Our running image, as for runspaces: the subsystem speaks this registry's
            // protocol even if an upgrade replaced the file on disk.
            _ = try Spawn.spawn(path: Spawn.runningImage, arguments: arguments, options: options)
        } catch {
            // Closing the socket ends the client's channel before any hello: that attempt
            // fails as a connection that closed before the host answered.
            log.write("gateway could not start a subsystem: \(error)")
        }
    }
}
