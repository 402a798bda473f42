import Glibc
import TetherIO

extension HostPaths {
    /// The same directories as absolute paths. The registry and the runspaces it spawns
    /// change directory (a runspace's bash starts in $HOME), so a relative
    /// `--runtime-dir` must be resolved once, by the process that was given it.
    public var absolute: HostPaths {
        HostPaths(runtimeDirectory: HostPaths.absolute(runtimeDirectory),
                  stateDirectory: HostPaths.absolute(stateDirectory),
                  configurationDirectory: configurationDirectory.map(HostPaths.absolute),
                  syslogSocket: syslogSocket.map(HostPaths.absolute))
    }

    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return directory == "/" ? "/" + path : directory + "/" + path
    }
}
