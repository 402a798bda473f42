import CTetherPosix

/// How this process's heap serves streaming, set once at start by the processes that
/// relay output: the CLI, the keeper and the subsystem's `serve` mode — and by the
/// library (`TetherClient`) the first time output streams into a program
/// (`configureOnceForStreaming`).
///
/// Output moves as records of up to 256 KiB, each allocated, passed on and freed. glibc's
/// defaults serve a block over 128 KiB with its own mmap(2) and return it with munmap(2)
/// (the threshold adapts only to blocks already freed), and give the heap's top back to
/// the kernel once 256 KiB of it is free: so each record cost fresh zeroed pages — page
/// faults, clear_page, unmap — in every process it crossed. Measured on a 1 GB stream
/// through the CLI: the CLI's CPU 0.97–1.00 → 0.50–0.59 s (system time 0.75 → 0.26 s)
/// with the heap keeping such blocks. The keeper still gives it back when it goes idle
/// (`malloc_trim`); the runspace and the registry keep glibc's defaults (long-lived,
/// one per session: no gain measured there, and they should not hold freed heap).
public enum StreamingHeap {
    public static func configure() {
        tether_malloc_for_streaming()
    }

    /// `configure()` once per process, when the first big record arrives (the library's
    /// `HostConnection`): a program that only manages sessions keeps glibc's defaults. In
    /// one that streams, each record's body is a fresh array of up to 256 KiB that the
    /// consumer frees; with the defaults the heap's top was given back and taken again
    /// over and over — measured on 1 GB through `tether-bench stream`: 37,000–62,000 page
    /// faults and 2.31–2.62 CPU-s, against 3,800–4,000 and 2.21–2.45 with the heap kept.
    public static func configureOnceForStreaming() {
        _ = configuredForStreaming
    }

    private static let configuredForStreaming: Void = configure()
}
