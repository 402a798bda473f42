#ifndef TETHER_CLIBEDIT_SHIM_H
#define TETHER_CLIBEDIT_SHIM_H
// Debian's libedit (BSD editline) through its readline-compatible API: line editing,
// in-memory history and completion display for `tether enter`. pkg-config's
// -I/usr/include/editline finds <readline.h>. The library's globals are set through
// these wrappers, so Swift's strict concurrency never touches a C global directly.
#include <stdio.h>
#include <stdlib.h>
#include <readline.h>

typedef char **(*tether_completion_function)(const char *text, int start, int end);

/// Before the first readline(): no signal handlers of libedit's own (the caller's SIGINT
/// handler interrupts readline, which then returns NULL with errno EINTR), input from
/// stdin, prompts and completion lists to stdout, `completion` asked on Tab.
static inline void tether_editline_setup(tether_completion_function completion) {
    rl_catch_signals = 0;
    rl_readline_name = "tether";
    rl_instream = stdin;
    rl_outstream = stdout;
    rl_attempted_completion_function = completion;
    rl_initialize();
}

/// The whole line being edited (for completion: which word of the command it is).
static inline const char *tether_editline_buffer(void) { return rl_line_buffer; }

/// What is put after a completed word when it is the only match (' ' by default; 0 for
/// none, e.g. after a directory's '/').
static inline void tether_editline_set_append_character(int character) {
    rl_completion_append_character = character;
}

/// Tells libedit not to fall back to completing local file names when the session
/// offered no candidates.
static inline void tether_editline_set_no_default_completion(void) {
    rl_attempted_completion_over = 1;
}

/// Words for completion end at blanks, quotes, redirections and command separators —
/// not at `$`, so `$HO` reaches the completer whole and can be completed as a variable.
static inline void tether_editline_set_word_breaks(void) {
    static char breaks[] = " \t\n\"'><=;|&(";
    rl_basic_word_break_characters = breaks;      // what libedit's completion uses
    rl_completer_word_break_characters = breaks;  // and GNU readline's name for it
}

#endif
