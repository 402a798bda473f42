// swift-tools-version:6.0
import PackageDescription

// Module map (one job each; arrows point at dependencies):
//
//   TetherProtocol   pure wire format: frames, messages, records. No I/O.
//   CTetherPosix     one-line C wrappers for Linux calls Swift can't see (accept4, SO_PEERCRED…).
//   TetherConfiguration  host: session configuration files, restricted command lines. Pure.
//   TetherIO         the poll(2) event loop, fds, Unix sockets, peer credentials, spawn.
//   TetherRunspace   host: one process per session, drives bash, journals output.
//   TetherRegistry   host: one process per user, the durable session table.
//   TetherSubsystem  host: what sshd runs; multiplexes stdio onto registry + runspaces.
//   TetherHostMain   host: argument handling shared by the `tether-subsystem` modes.
//   TetherSSH        client: libssh2 transport, ~/.ssh/config, known_hosts.
//   TetherClient     client: the async library API (sessions, invoke, receive) and the keeper.
//   TetherCLI        client: the `tether` verbs, one file each.
//   CLibEdit         system libedit (readline API): line editing for `tether enter`.
/// The Swift runtime linked into the two executables. FoundationEssentials' static
/// archive needs its own dependencies named (the dynamic library records them itself).
let staticSwiftRuntime: [LinkerSetting] = [
    .unsafeFlags(["-static-stdlib"], .when(platforms: [.linux])),
    .linkedLibrary("_FoundationCollections", .when(platforms: [.linux])),
    .linkedLibrary("_FoundationCShims", .when(platforms: [.linux])),
    .linkedLibrary("swiftSynchronization", .when(platforms: [.linux])),
]

let package = Package(
    name: "Tether",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "TetherClient", targets: ["TetherClient"]),
        .library(name: "TetherProtocol", targets: ["TetherProtocol"]),
        .executable(name: "tether", targets: ["tether"]),
        .executable(name: "tether-subsystem", targets: ["tether-subsystem"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CLibSSH2", pkgConfig: "libssh2",
                       providers: [.apt(["libssh2-1-dev"])]),
        // Line editing, history and completion display for `tether enter` (BSD editline).
        .systemLibrary(name: "CLibEdit", pkgConfig: "libedit",
                       providers: [.apt(["libedit-dev"])]),
        .target(name: "CTetherPosix"),
        .target(name: "TetherProtocol"),
        .target(name: "TetherIO", dependencies: ["TetherProtocol", "CTetherPosix"]),
        .target(name: "TetherConfiguration"),
        .target(name: "TetherRunspace", dependencies: ["TetherProtocol", "TetherIO", "CTetherPosix", "TetherConfiguration"]),
        .target(name: "TetherRegistry", dependencies: ["TetherProtocol", "TetherIO", "TetherRunspace", "TetherConfiguration"]),
        .target(name: "TetherSubsystem", dependencies: ["TetherProtocol", "TetherIO", "TetherRegistry"]),
        .target(name: "TetherHostMain", dependencies: [
            "TetherProtocol", "TetherIO", "TetherRunspace", "TetherRegistry", "TetherSubsystem", "TetherConfiguration",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // libssh2 1.10 runs AES-CTR one 16-byte EVP_Cipher call at a time; this batches it.
        .target(name: "CTetherSSHCipher"),
        .target(name: "TetherSSH", dependencies: ["CLibSSH2", "CTetherSSHCipher", "TetherProtocol", "TetherIO", "CTetherPosix"]),
        .target(name: "TetherClient", dependencies: ["TetherProtocol", "TetherIO", "TetherSSH", "CTetherPosix"]),
        .target(name: "TetherCLI", dependencies: [
            "TetherClient", "TetherProtocol", "TetherIO", "CLibEdit", "CTetherPosix",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The Swift runtime linked in: a `tether` command and every host process start in
        // ~half the time (no dynamic loading and relocation of a dozen Swift libraries),
        // and each CLI command pays that start.
        .executableTarget(name: "tether", dependencies: ["TetherCLI"], linkerSettings: staticSwiftRuntime),
        .executableTarget(name: "tether-subsystem", dependencies: ["TetherHostMain"], linkerSettings: staticSwiftRuntime),
        .executableTarget(name: "tether-bench", dependencies: ["TetherClient", "TetherSSH", "TetherIO", "TetherRunspace"]),
        .target(name: "TetherTestSupport", dependencies: ["TetherProtocol", "TetherIO", "CTetherPosix"],
                path: "Tests/TetherTestSupport"),
        .testTarget(name: "TetherProtocolTests", dependencies: ["TetherProtocol"]),
        .testTarget(name: "TetherConfigurationTests", dependencies: ["TetherConfiguration"]),
        .testTarget(name: "TetherHostTests", dependencies: ["TetherTestSupport", "TetherProtocol", "TetherIO"]),
        .testTarget(name: "TetherRegistryTests", dependencies: ["TetherRegistry", "TetherProtocol", "TetherIO", "CTetherPosix"]),
        .testTarget(name: "TetherRunspaceTests", dependencies: ["TetherRunspace", "TetherProtocol", "TetherIO", "CTetherPosix"]),
        .testTarget(name: "TetherSSHTests", dependencies: ["TetherSSH", "TetherTestSupport", "CLibSSH2", "CTetherSSHCipher", "TetherIO", "CTetherPosix"]),
        .testTarget(name: "TetherClientTests", dependencies: ["TetherTestSupport", "TetherClient", "TetherSSH", "TetherProtocol", "TetherIO", "TetherCLI"]),
    ]
)
