#include "CTetherPromptInterrupt.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static pthread_t editor_thread;
static volatile int interrupt_pipe = -1;

static void on_sigint(int signo) {
    (void)signo;
    int saved = errno;
    if (!pthread_equal(pthread_self(), editor_thread)) {
        pthread_kill(editor_thread, SIGINT);  // handled again there
    } else {
        char byte = 'i';
        ssize_t written = write(interrupt_pipe, &byte, 1);  // full: already noted
        (void)written;
    }
    errno = saved;
}

static void on_sigwinch(int signo) {
    (void)signo;
    int saved = errno;
    char byte = 'w';
    ssize_t written = write(interrupt_pipe, &byte, 1);
    (void)written;
    errno = saved;
}

int tether_prompt_catch_resizes(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigwinch;
    action.sa_flags = SA_RESTART;  // nobody's read needs to end for it
    sigemptyset(&action.sa_mask);
    return sigaction(SIGWINCH, &action, NULL);
}

int tether_prompt_catch_interrupts(int pipe_fd) {
    editor_thread = pthread_self();
    interrupt_pipe = pipe_fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, NULL) != 0) return -1;
    // Threads started from Swift's task pool inherit its mask, which blocks signals.
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);
    return pthread_sigmask(SIG_UNBLOCK, &interrupt, NULL) == 0 ? 0 : -1;
}
