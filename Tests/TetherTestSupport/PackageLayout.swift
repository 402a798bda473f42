import Glibc
import TetherIO

/// Where the package and its freshly built executables are, so e2e tests run exactly the
/// code under test (never an installed copy).
public enum PackageLayout {
    /// The package root: three levels above this source file
    /// (`<root>/Tests/TetherTestSupport/PackageLayout.swift`).
    public static var root: String { rootDirectory() }

    private static func rootDirectory(file: String = #filePath) -> String {
        var parts = file.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    /// The built executable `name` (`tether-subsystem`, `tether`): `$TETHER_TEST_BIN_DIR`
    /// if set, else next to the running test bundle (same configuration as the tests),
    /// else `<root>/.build/debug`. Throws, saying how to build it, when it is missing.
    public static func builtProduct(_ name: String) throws -> String {
        var directories: [String] = []
        if let override = Environment.get("TETHER_TEST_BIN_DIR") { directories.append(override) }
        let testBinary = Spawn.currentExecutable()
        if let slash = testBinary.lastIndex(of: "/") {
            directories.append(String(testBinary[..<slash]))
        }
        directories.append(root + "/.build/debug")
        for directory in directories {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw TestSupportError("the `\(name)` executable was not found in \(directories.joined(separator: ", ")); build it first: swift build --product \(name)")
    }
}
