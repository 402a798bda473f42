/// The bash functions that keep a session's shell alive whatever a command does (defined
/// once at startup, before the first command; see docs/architecture.md "No command ends
/// the session"). Pure text, no I/O.
///
/// - `__tether_begin` starts every command: the INT and ERR traps (re-installed each time,
///   see `DriverLine`), the marks cleared, and the per-command options reset —
///   `set +euvx` (errexit, nounset, verbose, xtrace end with the command that set them;
///   pipefail, noglob, noclobber, allexport and every `shopt` persist) and `set -E`.
/// - errexit: the ERR trap runs before bash's errexit exit; in the session's own shell
///   (not a subshell) it `return`s from the function or sourced file instead, and each
///   caller's ERR trap does the same (a caller that tests the status has errexit off in
///   the callee anyway, so bash would not have exited either). At the top level it turns
///   errexit off, so bash reads the next driver line.
/// - `exit` is a function: in a subshell it is the builtin; in the session's shell it
///   records the status, turns errexit off (the command is ending; an errexit exit would
///   race the unwinding) and unwinds the whole command — extdebug's DEBUG trap returning 2
///   simulates `return` before every further command, up to the driver line, whatever
///   the callers test. `__tether_end` reports the recorded status, after turning xtrace
///   and verbose off: were they left on until the next command's `__tether_begin`, bash
///   would trace the next driver line and prelude onto that command's stderr.
/// - `exec` is a function: with a program, the program runs as a child with the call's
///   redirections and its status ends the command, as `exit` would; with redirections
///   only, the descriptors 0–9 as the call left them are kept (duplicated and put back by
///   a one-shot DEBUG trap before the next command), as the builtin would (0 and 3 are
///   the command's own, and come back after it as before).
/// - The last line of defence, the EXIT trap: errors bash treats as fatal in a
///   non-interactive shell (an unset variable under `set -u`, `${x?}`, `builtin exit`)
///   jump to bash's top level and exit. When that happens in the session's shell, with
///   the driver's own stdin and status pipe back in place (`__tether_in`, `__tether_st`:
///   the runspace's ends, as `/proc/PID/fd/N`) and stdin not at end of file (the runspace
///   closes it before terminating bash), bash writes its variables, functions, aliases,
///   options and traps to a state file and re-executes itself (same PID, so background
///   jobs stay its children and in its process group) with `BASH_ENV` restoring the state
///   and reporting the command's status. The job table is what this loses: `jobs`, `%1`
///   and `wait` no longer know the earlier jobs (they run on). A signal that kills bash
///   mid-command (fds not back in place) still ends it: `kill -9 $$` breaks the session.
enum ShellPrelude {
    /// The definitions, one bash text.
    static let definitions = #"""
__tether_begin() { \builtin trap -- '__tether_interrupted=1; [[ -n ${BASH_SOURCE-} ]] && \builtin return 130' INT; \builtin trap -- '__tether_e=$?; if [[ -n ${__tether_interrupted-} ]]; then [[ -n ${BASH_SOURCE-} ]] && \builtin return 130; elif [[ $- == *e* && $BASHPID == $$ ]]; then if [[ -n ${BASH_SOURCE-} ]]; then [[ -n $__tether_s ]] || __tether_s=$__tether_e; \builtin return $__tether_e; fi; \builtin set +e; fi' ERR; __tether_interrupted=; __tether_s=; \builtin set +euvx -E; }
__tether_stop() { [[ -n $__tether_s ]] || __tether_s=$1; \builtin set +e; \builtin shopt -s extdebug; \builtin trap -- '\__tether_debug' DEBUG; }
__tether_debug() {
  if ((${#__tether_keep[@]})); then \__tether_keep_descriptors; fi
  if [[ -n $__tether_s ]]; then
    if ((${#BASH_SOURCE[@]} > 1)); then \builtin return 2; fi
    \builtin shopt -u extdebug
  fi
  \builtin trap -- - DEBUG
}
__tether_keep_descriptors() {
  local n k top=; ((${#BASH_SOURCE[@]} > 2)) || top=1
  for n in 0 1 2 3 4 5 6 7 8 9; do
    k=${__tether_keep[n]}
    [[ -n $top && ( $n == 0 || $n == 3 ) ]] && k=
    if [[ $k == - ]]; then [[ -e /proc/self/fd/$n ]] && \builtin eval "\\command exec $n>&-"
    elif [[ -n $k ]] && ! [[ /proc/self/fd/$n -ef /proc/self/fd/$k ]]; then \builtin eval "\\command exec $n>&$k"
    fi
  done
  for k in "${__tether_keep[@]}"; do [[ $k == - ]] || \builtin eval "\\command exec $k>&-"; done
  __tether_keep=()
}
exec() {
  if (($#)); then
    [[ $BASHPID == $$ ]] || \builtin exec "$@"
    ( \builtin exec "$@" ); \exit $?
  fi
  __tether_keep=(); local n k
  for n in 0 1 2 3 4 5 6 7 8 9; do
    if [[ -e /proc/self/fd/$n ]]; then \command exec {k}>&$n; __tether_keep[n]=$k; else __tether_keep[n]=-; fi
  done
  \builtin trap -- '\__tether_debug' DEBUG
}
exit() {
  __tether_e=$?
  [[ $BASHPID == $$ ]] || \builtin exit "$@"
  if (($#)); then
    if [[ $1 =~ ^[-+]?[0-9]+$ ]]; then __tether_e=$(( 10#${1#[-+]} )); [[ $1 == -* ]] && __tether_e=$(( -__tether_e )); __tether_e=$(( __tether_e & 255 ))
    else \builtin printf '%s\n' "bash: exit: $1: numeric argument required" >&2; __tether_e=2; fi
  fi
  \__tether_stop $__tether_e
  \builtin return $__tether_e
}
__tether_respawn() {
  local __tether_rs=$? __tether_rn __tether_rf=$__tether_w/state
  [[ $BASHPID == $$ && /proc/self/fd/0 -ef $__tether_in && /proc/self/fd/3 -ef $__tether_st ]] || \builtin return
  \builtin read -t 0 && \builtin return
  \builtin trap -- - DEBUG
  {
    \builtin echo '\builtin unset BASH_ENV; {'
    for __tether_rn in ${!A@} ${!B@} ${!C@} ${!D@} ${!E@} ${!F@} ${!G@} ${!H@} ${!I@} ${!J@} ${!K@} ${!L@} ${!M@} ${!N@} ${!O@} ${!P@} ${!Q@} ${!R@} ${!S@} ${!T@} ${!U@} ${!V@} ${!W@} ${!X@} ${!Y@} ${!Z@} ${!a@} ${!b@} ${!c@} ${!d@} ${!e@} ${!f@} ${!g@} ${!h@} ${!i@} ${!j@} ${!k@} ${!l@} ${!m@} ${!n@} ${!o@} ${!p@} ${!q@} ${!r@} ${!s@} ${!t@} ${!u@} ${!v@} ${!w@} ${!x@} ${!y@} ${!z@} ${!_@}; do
      case $__tether_rn in BASH|BASHOPTS|BASHPID|BASH_*|COMP_WORDBREAKS|DIRSTACK|EPOCH*|EUID|FUNCNAME|GROUPS|HISTCMD|LINENO|PPID|PIPESTATUS|RANDOM|SECONDS|SHELLOPTS|SRANDOM|UID|_|__tether_r[snf]) continue;; esac
      \builtin declare -p "$__tether_rn"
    done
    \builtin declare -f; \builtin alias -p; \builtin shopt -p; \builtin set +o; \builtin trap -p
    \builtin echo "} 2>/dev/null; \\builtin set +euvx; \\builtin shopt -u extdebug; \\builtin readonly -f __tether_begin __tether_stop __tether_debug __tether_keep_descriptors __tether_respawn __tether_end; \\builtin printf '%d\\n' $__tether_rs >&3"
  } >"$__tether_rf" 2>/dev/null
  BASH_ENV=$__tether_rf \builtin exec -a bash "$BASH" --noprofile --norc
}
__tether_s= __tether_e= __tether_interrupted= __tether_keep=()
__tether_end() { \builtin local s=${__tether_s:-$?}; \builtin set +vx; \builtin echo $s >&3; }
\builtin trap -- '\__tether_respawn' EXIT
\builtin readonly -f __tether_begin __tether_stop __tether_debug __tether_keep_descriptors __tether_respawn __tether_end
"""#
}
