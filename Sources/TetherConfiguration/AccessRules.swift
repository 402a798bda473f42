import Glibc

/// Who may use a configuration: sshd's AllowUsers/AllowGroups/DenyUsers/DenyGroups, with
/// sshd's order and glob patterns (`*`, `?`, `[…]`). A `restricted` configuration that
/// names nobody is for nobody: it must be given out on purpose.
public struct AccessRules: Sendable, Equatable {
    public var allowUsers: [String] = []
    public var allowGroups: [String] = []
    public var denyUsers: [String] = []
    public var denyGroups: [String] = []
    public init() {}

    /// Why `user` (a member of `groups`) may not use a configuration of `kind`, or nil.
    public func refusal(user: String, groups: [String], kind: SessionConfiguration.Kind) -> String? {
        func matches(_ patterns: [String], _ name: String) -> String? {
            patterns.first { fnmatch($0, name, 0) == 0 }
        }
        if let pattern = matches(denyUsers, user) {
            return "user \(user) matches DenyUsers \(pattern)"
        }
        if !allowUsers.isEmpty && matches(allowUsers, user) == nil {
            return "user \(user) is not in AllowUsers \(allowUsers.joined(separator: " "))"
        }
        for group in groups {
            if let pattern = matches(denyGroups, group) {
                return "user \(user) is in group \(group), which matches DenyGroups \(pattern)"
            }
        }
        if !allowGroups.isEmpty && !groups.contains(where: { matches(allowGroups, $0) != nil }) {
            return "user \(user) is in none of AllowGroups \(allowGroups.joined(separator: " "))"
        }
        if kind == .restricted && allowUsers.isEmpty && allowGroups.isEmpty {
            return "a restricted configuration is for nobody until AllowUsers or AllowGroups names who may use it"
        }
        return nil
    }
}

/// The running user as access rules see it: name, home, and every group (from the group
/// database, not the client).
public struct UnixAccount: Sendable, Equatable {
    public var uid: uid_t
    public var name: String
    public var home: String
    public var groups: [String]

    public init(uid: uid_t, name: String, home: String, groups: [String]) {
        self.uid = uid
        self.name = name
        self.home = home
        self.groups = groups
    }

    /// The account of this process's real uid (getpwuid_r, getgrouplist).
    public static func current() -> UnixAccount {
        let uid = getuid()
        var record = passwd()
        var buffer = [CChar](repeating: 0, count: 16384)
        var result: UnsafeMutablePointer<passwd>?
        guard getpwuid_r(uid, &record, &buffer, buffer.count, &result) == 0, let entry = result else {
            return UnixAccount(uid: uid, name: "uid\(uid)", home: "/", groups: [])
        }
        let name = String(cString: entry.pointee.pw_name)
        let home = String(cString: entry.pointee.pw_dir)
        let primary = entry.pointee.pw_gid
        var count: Int32 = 64
        var gids = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primary, &gids, &count) < 0 {
            gids = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, primary, &gids, &count)
        }
        var groups: [String] = []
        for gid in gids.prefix(Int(max(0, count))) {
            var group = Glibc.group()
            var groupBuffer = [CChar](repeating: 0, count: 16384)
            var found: UnsafeMutablePointer<Glibc.group>?
            if getgrgid_r(gid, &group, &groupBuffer, groupBuffer.count, &found) == 0, let found {
                let groupName = String(cString: found.pointee.gr_name)
                if !groups.contains(groupName) { groups.append(groupName) }
            }
        }
        return UnixAccount(uid: uid, name: name, home: home, groups: groups)
    }
}
