import ArgumentParser

/// `--verbose`, for every verb that shows a command's output (PowerShell's -Verbose). Not
/// ssh's `-v`, which says how the connection was made.
struct StreamArguments: ParsableArguments {
    @Flag(name: .customLong("verbose"), help: ArgumentHelp(
        "Show the command's verbose records (tether-verbose) as VERBOSE: lines on stderr. Warnings, information and progress bars are shown without it (-v is ssh's verbosity, not this)."))
    var showVerbose = false
}
