/// The release both binaries report with `--version`, next to the protocol they speak.
public let tetherReleaseVersion = "0.1"

/// "NAME 0.1 (protocol 2)" plus any detail ("libssh2 1.10.0").
public func tetherVersionLine(_ program: String, detail: String? = nil) -> String {
    "\(program) \(tetherReleaseVersion) (protocol \(tetherProtocolVersion)\(detail.map { ", \($0)" } ?? ""))"
}
