#ifndef CTETHER_PROMPT_INTERRUPT_H
#define CTETHER_PROMPT_INTERRUPT_H
// Ctrl-C at `tether enter`'s prompt. A signal handler can't be Swift, so it is here.

/// Makes SIGINT, whichever thread the kernel delivers it to, interrupt the calling
/// thread's blocking reads (no SA_RESTART: readline's read(2) returns EINTR, so the
/// prompt starts over), and note each Ctrl-C as one byte on `pipe_fd` (non-blocking),
/// which `tether enter` polls while a command runs. Returns sigaction's result.
int tether_prompt_catch_interrupts(int pipe_fd);

#endif
