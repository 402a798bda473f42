#ifndef CTETHER_PROMPT_INTERRUPT_H
#define CTETHER_PROMPT_INTERRUPT_H
// Ctrl-C and window changes in `tether enter`. Signal handlers can't be Swift, so they are here.

/// Makes SIGINT, whichever thread the kernel delivers it to, interrupt the calling
/// thread's blocking reads (no SA_RESTART: readline's read(2) returns EINTR, so the
/// prompt starts over), and note each Ctrl-C as one byte on `pipe_fd` (non-blocking),
/// which `tether enter` polls while a command runs. Returns sigaction's result.
int tether_prompt_catch_interrupts(int pipe_fd);

/// After `tether_prompt_catch_interrupts`: each SIGWINCH (the window changed size) writes
/// 'w' to the same pipe (Ctrl-C writes 'i'). A handler of our own rather than a dispatch
/// source: it sees the signal whichever thread the kernel picks.
int tether_prompt_catch_resizes(void);

#endif
