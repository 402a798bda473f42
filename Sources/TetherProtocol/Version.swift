/// The release both binaries report with `--version`, next to the protocols they speak.
/// Releases are tagged `vRELEASE` in git; CI builds the previous tag to test against.
public let tetherReleaseVersion = "0.2"

/// "NAME 0.2 (protocol 3, speaks 2–3)" plus any detail ("libssh2 1.10.0").
public func tetherVersionLine(_ program: String, detail: String? = nil) -> String {
    "\(program) \(tetherReleaseVersion) (protocol \(tetherProtocolVersion), speaks \(ProtocolRange.ours)\(detail.map { ", \($0)" } ?? ""))"
}
