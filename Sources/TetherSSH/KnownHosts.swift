import CLibSSH2
import Glibc

/// One usable line of a known_hosts file.
struct KnownHostEntry {
    enum Marker { case plain, revoked, certAuthority }
    enum Hosts {
        /// Comma-separated patterns: names, `[host]:port`, `*`/`?` wildcards, `!` negation.
        case patterns([String])
        /// `|1|salt|hash`: HMAC-SHA1 of the name; matched by libssh2.
        case hashed(String)
    }
    var marker: Marker
    var hosts: Hosts
    var keyType: String
    var keyBlob: [UInt8]
    var file: String
    var line: Int

    var location: String { "\(file):\(line)" }
}

/// What known_hosts says about a host's key.
enum KnownHostsVerdict {
    case match(KnownHostEntry)
    /// A line for this host and key type holds a different key.
    case mismatch(KnownHostEntry)
    /// The key is listed as @revoked.
    case revoked(KnownHostEntry)
    /// No line for this host and key type (there may be lines with other key types).
    case notFound
}

/// known_hosts files, parsed in Swift (so wildcards, negation, @revoked and long lines
/// work, and no line is silently dropped as libssh2's readfile does after a bad one);
/// only hashed names are matched through libssh2, which holds the HMAC-SHA1.
struct KnownHosts {
    private(set) var entries: [KnownHostEntry] = []
    /// Lines we could not read, for messages ("file:line: why").
    private(set) var problems: [String] = []

    init(files: [String]) {
        for file in files { load(file) }
    }

    private mutating func load(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno != ENOENT && errno != ENOTDIR {
                problems.append("\(path): \(String(cString: strerror(errno)))")
            }
            return
        }
        defer { close(fd) }
        guard let bytes = try? ConfigFileReader.readAll(fd, path: path) else {
            problems.append("\(path): cannot read")
            return
        }
        var number = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            let text = String(decoding: rawLine, as: UTF8.self)
            if let entry = parse(text, file: path, line: number) { entries.append(entry) }
        }
    }

    private mutating func parse(_ text: String, file: String, line: Int) -> KnownHostEntry? {
        var fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let firstField = fields.first, !firstField.hasPrefix("#") else { return nil }
        var marker = KnownHostEntry.Marker.plain
        if firstField.hasPrefix("@") {
            switch firstField {
            case "@revoked": marker = .revoked
            // Kept so the transport choice can see it; libssh2 can't check host certificates,
            // so such hosts go through OpenSSH (LibSSH2Limits).
            case "@cert-authority": marker = .certAuthority
            default:
                problems.append("\(file):\(line): unknown marker \(firstField)")
                return nil
            }
            fields.removeFirst()
        }
        guard fields.count >= 3, let blob = Base64.decode(fields[2]), keyTypeName(ofBlob: blob) != nil else {
            problems.append("\(file):\(line): not a known_hosts line (expected: hosts keytype base64-key)")
            return nil
        }
        let hosts: KnownHostEntry.Hosts = fields[0].hasPrefix("|1|")
            ? .hashed(fields[0])
            : .patterns(fields[0].split(separator: ",").map(String.init))
        return KnownHostEntry(marker: marker, hosts: hosts, keyType: fields[1], keyBlob: blob, file: file, line: line)
    }

    /// The lines whose host field matches `name` (`host` or `[host]:port`), in file order.
    func entries(for name: String, session: OpaquePointer) -> [KnownHostEntry] {
        var matched = Set<Int>()
        for (index, entry) in entries.enumerated() {
            if case .patterns(let patterns) = entry.hosts, HostPattern.listMatches(name, patterns: patterns) {
                matched.insert(index)
            }
        }
        for index in HashedNameMatcher.matches(name, in: entries, session: session) {
            matched.insert(index)
        }
        return matched.sorted().map { entries[$0] }
    }

    /// `@cert-authority` lines for this host: its key is vouched for by a CA.
    func certificateAuthorities(for name: String, session: OpaquePointer) -> [KnownHostEntry] {
        entries(for: name, session: session).filter { $0.marker == .certAuthority }
    }

    /// Key types this host is known by, first-listed first: the order to ask the server for.
    func keyTypes(for name: String, session: OpaquePointer) -> [String] {
        var seen = Set<String>()
        return entries(for: name, session: session)
            .filter { $0.marker == .plain }
            .map(\.keyType)
            .filter { seen.insert($0).inserted }
    }

    func check(name: String, keyBlob: [UInt8], session: OpaquePointer) -> KnownHostsVerdict {
        // OpenSSH checks revocation against every line, whatever its host field.
        if let revoked = entries.first(where: { $0.marker == .revoked && $0.keyBlob == keyBlob }) {
            return .revoked(revoked)
        }
        let forHost = entries(for: name, session: session).filter { $0.marker == .plain }
        if let same = forHost.first(where: { $0.keyBlob == keyBlob }) { return .match(same) }
        let type = keyTypeName(ofBlob: keyBlob)
        if let other = forHost.first(where: { keyTypeName(ofBlob: $0.keyBlob) == type }) { return .mismatch(other) }
        return .notFound
    }

    /// Appends "name type base64" to `file` (created 0600, its directory 0700 if missing).
    static func append(name: String, keyBlob: [UInt8], to file: String, hashed: Bool = false) throws {
        let type = keyTypeName(ofBlob: keyBlob) ?? "unknown"
        if let slash = file.lastIndex(of: "/"), slash != file.startIndex {
            try createDirectories(String(file[..<slash]))
        }
        let fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw KnownHostsWriteError("cannot open \(file) for writing: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // Don't glue our line onto a last line that lacks its newline.
        var prefix = ""
        var info = stat()
        if fstat(fd, &info) == 0 && info.st_size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, info.st_size - 1) == 1 && last != UInt8(ascii: "\n") { prefix = "\n" }
        }
        let written = hashed ? HashedHostName.make(name) : name
        let line = Array("\(prefix)\(written) \(type) \(Base64.encode(keyBlob))\n".utf8)
        // One write with O_APPEND: concurrent connections never interleave within a line.
        let count = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard count == line.count else {
            throw KnownHostsWriteError("cannot write to \(file): \(String(cString: strerror(errno)))")
        }
    }
}

/// mkdir -p, new directories 0700 (like ~/.ssh); existing ones are left as they are.
private func createDirectories(_ path: String) throws {
    var partial = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        partial += "/" + component
        if mkdir(partial, 0o700) != 0 && errno != EEXIST {
            throw KnownHostsWriteError("cannot create \(partial): \(String(cString: strerror(errno)))")
        }
    }
}

struct KnownHostsWriteError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Matches hashed `|1|salt|hash` names using libssh2's HMAC-SHA1: each hashed line is fed
/// to libssh2 with a stand-in ed25519 key that encodes the line's index, then probed with
/// a key no line has; every MISMATCH names one more line for this host. Linear in lines,
/// and independent of key types libssh2 may not know.
enum HashedNameMatcher {
    static func matches(_ name: String, in entries: [KnownHostEntry], session: OpaquePointer) -> [Int] {
        let hashed = entries.indices.filter { if case .hashed = entries[$0].hosts { true } else { false } }
        guard !hashed.isEmpty, let collection = libssh2_knownhost_init(session) else { return [] }
        defer { libssh2_knownhost_free(collection) }
        for index in hashed {
            guard case .hashed(let field) = entries[index].hosts else { continue }
            let line = "\(field) ssh-ed25519 \(Base64.encode(standIn(for: index)))"
            _ = libssh2_knownhost_readline(collection, line, line.utf8.count, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
        }
        let probe = standIn(for: -1)
        let typemask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | LIBSSH2_KNOWNHOST_KEY_ED25519
        var found: [Int] = []
        while found.count < hashed.count {
            var entry: UnsafeMutablePointer<libssh2_knownhost>?
            // Port -1: check exactly `name` (already "[host]:port" off port 22), as OpenSSH does.
            let result = probe.withUnsafeBufferPointer { key in
                key.withMemoryRebound(to: CChar.self) {
                    libssh2_knownhost_checkp(collection, name, -1, $0.baseAddress, $0.count, typemask, &entry)
                }
            }
            guard result == LIBSSH2_KNOWNHOST_CHECK_MISMATCH, let entry,
                  let keyText = entry.pointee.key, let blob = Base64.decode(String(cString: keyText)),
                  let index = index(ofStandIn: blob)
            else { break }
            found.append(index)
            libssh2_knownhost_del(collection, entry)
        }
        return found
    }

    /// An ed25519 public key blob whose 32 key bytes carry `index` (-1: the probe).
    private static func standIn(for index: Int) -> [UInt8] {
        var key = [UInt8](repeating: index < 0 ? 0xff : 0, count: 32)
        if index >= 0 {
            var value = UInt64(index)
            for position in 0..<8 { key[position] = UInt8(value & 0xff); value >>= 8 }
        }
        var blob: [UInt8] = []
        blob.appendSSHString(Array("ssh-ed25519".utf8))
        blob.appendSSHString(key)
        return blob
    }

    private static func index(ofStandIn blob: [UInt8]) -> Int? {
        var reader = SSHWireReader(blob)
        guard reader.text() == "ssh-ed25519", let key = reader.string(), key.count == 32 else { return nil }
        return key[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
    }
}
