import Glibc

/// `/etc/tether/configurations.d` (or `--configuration-dir DIR`): one `NAME.conf` per
/// configuration, read fresh whenever one is needed, so an admin's edit applies to the
/// next session without restarting anything.
///
/// Like sshd with its own files, nothing is read from a place someone other than the
/// admin could have written: the directory, each file (and every directory above them)
/// must be owned by root and not writable by group or others. The one exception is for
/// unprivileged runs (tests): a directory owned by the very user Tether runs as, with
/// files owned by that user, is trusted by that user's processes.
public struct ConfigurationDirectory: Sendable {
    public static let defaultPath = "/etc/tether/configurations.d"
    public let path: String

    public init(path: String? = nil) {
        self.path = path ?? ConfigurationDirectory.defaultPath
    }

    /// What the directory holds: the usable configurations and everything wrong.
    public struct Contents: Sendable {
        /// Configurations without errors, by name, built-in `bash` included unless a
        /// `bash.conf` replaces it. Disabled ones are here too (`enabled == false`).
        public var configurations: [SessionConfiguration] = []
        /// Configuration names whose file has errors (and so can't be used).
        public var broken: [String: [ConfigurationDiagnostic]] = [:]
        public var diagnostics: [ConfigurationDiagnostic] = []
        /// The directory does not exist: only the built-in configuration.
        public var missing = false
    }

    public func loadAll() -> Contents {
        var contents = Contents()
        var names: [String] = []
        if let problem = unsafeDirectory() {
            if case .missing = problem {
                contents.missing = true
            } else {
                contents.diagnostics.append(ConfigurationDiagnostic(file: path, line: 0, message: problem.message))
                // Nothing of an unsafe directory is used, the built-in `bash` included:
                // a `bash.conf` there may have meant to take it away.
                contents.broken[SessionConfiguration.builtInName] = contents.diagnostics
                return contents
            }
        } else {
            names = listConfigurationFiles(&contents.diagnostics)
        }
        if !names.contains(SessionConfiguration.builtInName) {
            contents.configurations.append(.builtIn)
        }
        for name in names {
            switch loadFile(name) {
            case .success(let configuration): contents.configurations.append(configuration)
            case .failure(let failure):
                contents.broken[name] = failure.diagnostics
                contents.diagnostics += failure.diagnostics
            }
        }
        contents.configurations.sort { $0.name < $1.name }
        return contents
    }

    public struct LoadFailure: Error, Sendable {
        public var diagnostics: [ConfigurationDiagnostic]
        public var notFound = false
        public var summary: String {
            diagnostics.map(\.description).joined(separator: "; ")
        }
    }

    /// One configuration by name: its file, the built-in `bash`, or why neither.
    public func load(_ name: String) -> Result<SessionConfiguration, LoadFailure> {
        if let problem = ConfigurationParser.problem(withName: name) {
            return .failure(LoadFailure(diagnostics: [ConfigurationDiagnostic(file: name, line: 0, message: problem)], notFound: true))
        }
        if let problem = unsafeDirectory() {
            if case .missing = problem {
                return name == SessionConfiguration.builtInName ? .success(.builtIn) : .failure(notFound(name))
            }
            return .failure(LoadFailure(diagnostics: [ConfigurationDiagnostic(file: path, line: 0, message: problem.message)]))
        }
        let file = filePath(name)
        var info = stat()
        if lstat(file, &info) != 0 {
            return name == SessionConfiguration.builtInName ? .success(.builtIn) : .failure(notFound(name))
        }
        return loadFile(name)
    }

    private func notFound(_ name: String) -> LoadFailure {
        LoadFailure(diagnostics: [ConfigurationDiagnostic(file: filePath(name), line: 0,
                                                          message: "no configuration named \(name) on this host")], notFound: true)
    }

    public func filePath(_ name: String) -> String { path + "/" + name + ".conf" }

    private func loadFile(_ name: String) -> Result<SessionConfiguration, LoadFailure> {
        let file = filePath(name)
        if let problem = FileSafety.problem(file, trustedOwner: trustedOwner, kind: .file) {
            return .failure(LoadFailure(diagnostics: [ConfigurationDiagnostic(file: file, line: 0, message: problem)]))
        }
        let text: String
        switch FileSafety.read(file) {
        case .failure(let problem):
            return .failure(LoadFailure(diagnostics: [ConfigurationDiagnostic(file: file, line: 0, message: problem.message)]))
        case .success(let read):
            text = read
        }
        var (configuration, diagnostics) = ConfigurationParser.parse(text, name: name, file: file)
        diagnostics += ConfigurationFileChecks.problems(configuration, trustedOwner: trustedOwner)
        guard diagnostics.isEmpty else { return .failure(LoadFailure(diagnostics: diagnostics)) }
        configuration.file = file
        return .success(configuration)
    }

    private func listConfigurationFiles(_ diagnostics: inout [ConfigurationDiagnostic]) -> [String] {
        guard let handle = opendir(path) else {
            diagnostics.append(ConfigurationDiagnostic(file: path, line: 0, message: "cannot read the directory: \(String(cString: strerror(errno)))"))
            return []
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let fileName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard fileName.hasSuffix(".conf"), !fileName.hasPrefix(".") else { continue }
            let name = String(fileName.dropLast(5))
            if let problem = ConfigurationParser.problem(withName: name) {
                diagnostics.append(ConfigurationDiagnostic(file: path + "/" + fileName, line: 0, message: problem))
                continue
            }
            names.append(name)
        }
        return names.sorted()
    }

    enum DirectoryProblem {
        case missing
        case unsafe(String)
        var message: String {
            switch self {
            case .missing: "does not exist"
            case .unsafe(let why): why
            }
        }
    }

    /// Root, or — only when we are not root — ourselves if we own the directory.
    var trustedOwner: uid_t {
        var info = stat()
        if geteuid() != 0, stat(path, &info) == 0, info.st_uid == geteuid() { return geteuid() }
        return 0
    }

    private func unsafeDirectory() -> DirectoryProblem? {
        var info = stat()
        if stat(path, &info) != 0 {
            return errno == ENOENT ? .missing : .unsafe("cannot stat: \(String(cString: strerror(errno)))")
        }
        if let problem = FileSafety.problem(path, trustedOwner: trustedOwner, kind: .directory) {
            return .unsafe(problem)
        }
        return nil
    }
}
