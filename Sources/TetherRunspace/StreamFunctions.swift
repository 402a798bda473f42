/// The commands a session's commands write PowerShell's other streams with (`StreamPipe`).
/// Pure text, no I/O.
///
/// They are shell functions in the session's bash (defined once with the prelude: no
/// process per call, so a loop may report progress freely) and, for everything the
/// command starts — `bash script.sh`, a Python program, `make` — the same functions in
/// small bash scripts in `<work>/bin`, which the session appends to `PATH`. Both find
/// the FIFO through `$TETHER_STREAMS` (exported, so children inherit it; a job's copy of
/// the shell gets its own). Outside a session (no FIFO there) a warning becomes a
/// `WARNING: …` line on stderr and information a plain line; verbose and progress are
/// silent, as PowerShell's defaults show them.
///
/// - `tether-warning TEXT…`, `tether-verbose TEXT…`, `tether-information TEXT…`: the
///   words joined by spaces, as `echo` does.
/// - `tether-progress [--completed] PERCENT ACTIVITY [STATUS]`: PERCENT is 0–100, or -1
///   when unknown; `--completed` (PERCENT may then be left out) ends the activity and
///   its bar.
///
/// `case` patterns rather than `=~`, so a call leaves the command's `BASH_REMATCH` alone;
/// `${…-}` everywhere, so `set -u` in the caller is no problem.
enum StreamFunctions {
    static let names = ["tether-progress", "tether-warning", "tether-verbose", "tether-information"]
    static let variable = "TETHER_STREAMS"

    static let definitions = #"""
__tether_stream() {
  if [[ -p ${TETHER_STREAMS-} ]]; then
    local __tether_a
    \builtin printf '%s\0' "$@" >>"$TETHER_STREAMS" && \builtin read -r -n 1 __tether_a <"$TETHER_STREAMS.ack"
  else
    case $1 in W) \builtin printf 'WARNING: %s\n' "$2" >&2;; I) \builtin printf '%s\n' "$2" >&2;; esac
  fi
  \builtin return 0
}
tether-warning() { \__tether_stream W "$*"; }
tether-verbose() { \__tether_stream V "$*"; }
tether-information() { \__tether_stream I "$*"; }
tether-progress() {
  local __tether_c=
  if [[ ${1-} == --completed ]]; then
    __tether_c=c; \builtin shift
    case ${1-} in -1|[0-9]|[1-9][0-9]|100) ;; *) \builtin set -- -1 "$@";; esac
  fi
  case $#:${1-} in
    [23]:-1|[23]:[0-9]|[23]:[1-9][0-9]|[23]:100) ;;
    *) \builtin printf '%s\n' 'usage: tether-progress [--completed] PERCENT ACTIVITY [STATUS]  (PERCENT: 0-100, or -1 if unknown)' >&2
       \builtin return 2;;
  esac
  \__tether_stream P "$1" "$__tether_c" "$2" "${3-}"
}
"""#

    /// The file `<work>/bin/NAME` for one of `names`: the functions, then the call.
    static func script(name: String, bash: String) -> String {
        "#!" + bash + "\n" + definitions + "\n" + name + " \"$@\"\n"
    }
}
