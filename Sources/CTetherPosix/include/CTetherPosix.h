#ifndef CTETHERPOSIX_H
#define CTETHERPOSIX_H
// Linux calls that Glibc's Swift overlay hides behind _GNU_SOURCE, wrapped so Swift can
// reach them. Each wrapper is a single call; keep logic in Swift.
#include <sys/types.h>
#include <signal.h>

int tether_pipe2(int fds[2], int flags);
int tether_accept4(int listener, int flags);
/// Peer credentials of a Unix socket: returns 0 and fills uid/pid, or -1 with errno.
int tether_peer_credentials(int fd, uid_t *uid, pid_t *pid);
/// posix_spawn flag that makes the child a session leader (glibc ≥ 2.26), or 0.
short tether_posix_spawn_setsid_flag(void);
int tether_tcp_quickack(int fd);
int tether_tcp_nodelay(int fd);
int tether_wifexited(int status);
int tether_wexitstatus(int status);
int tether_wifsignaled(int status);
int tether_wtermsig(int status);
int tether_sock_cloexec(void);
int tether_sock_stream(void);
/// A pollable descriptor that becomes readable when `pid` exits (Linux ≥ 5.3), or -1.
int tether_pidfd_open(pid_t pid);
/// A copy of descriptor `fd` of the process behind `pidfd` (Linux ≥ 5.6; tests look into a
/// stopped CLI's socket with it), or -1.
int tether_pidfd_getfd(int pidfd, int fd);
/// Makes this process the reaper of its descendants' orphans (prctl PR_SET_CHILD_SUBREAPER).
int tether_set_child_subreaper(void);
/// Returns freed heap memory to the kernel (glibc malloc_trim(0)): for long-idle daemons.
int tether_malloc_trim(void);
/// glibc malloc keeps blocks up to 4 MiB on its heap and 16 MiB of freed heap before
/// trimming (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD): see StreamingHeap.
void tether_malloc_for_streaming(void);
/// memfd_create(name, MFD_CLOEXEC): an anonymous in-memory file (GNU-only in glibc's headers).
int tether_memfd_cloexec(const char *name);
/// splice(2) up to `count` bytes from `from` to `to` (one of them a pipe), moving pages
/// rather than copying them where the kernel can, never blocking on the pipe
/// (SPLICE_F_MOVE | SPLICE_F_NONBLOCK; `from` should be non-blocking itself).
ssize_t tether_splice(int from, int to, size_t count);
/// Pseudo-terminals (_XOPEN_SOURCE calls): a master, its grant and unlock, the slave's path.
int tether_posix_openpt(int flags);
int tether_grantpt(int fd);
int tether_unlockpt(int fd);
int tether_ptsname_r(int fd, char *buffer, size_t length);
#include <spawn.h>
int tether_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

#include "CTetherPromptInterrupt.h"

#endif

/// inotify_init1(IN_NONBLOCK | IN_CLOEXEC).
int tether_inotify_open(void);
/// Watches directory `path` for entries leaving it (deleted, renamed away or over) and for
/// the directory itself going (IN_DELETE_SELF, IN_MOVE_SELF). Returns the watch descriptor.
int tether_inotify_watch_removals(int fd, const char *path);
/// The mask bits of an event that make the whole directory suspect (it went, or events
/// were lost): IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW.
unsigned int tether_inotify_directory_gone_mask(void);

/// sendmsg(2) of `length` bytes with one descriptor attached (SCM_RIGHTS), MSG_NOSIGNAL.
/// Returns the bytes sent, or -1 with errno.
long tether_send_with_descriptor(int socket, const void *bytes, unsigned long length, int descriptor);
/// recvmsg(2) into `buffer`, taking up to `capacity` descriptors that rode with the bytes
/// (SCM_RIGHTS, MSG_CMSG_CLOEXEC) into `descriptors`, their number into `*count`.
/// Descriptors beyond `capacity` are closed. Returns the bytes read, or -1 with errno.
long tether_receive_with_descriptors(int socket, void *buffer, unsigned long length,
                                     int *descriptors, int capacity, int *count);
/// send(2) with MSG_DONTWAIT | MSG_NOSIGNAL: never blocks, never raises SIGPIPE.
long tether_send_nonblocking(int socket, const void *bytes, unsigned long length);

/// libssh2's recv callback (LIBSSH2_CALLBACK_RECV): recv(2), except on a descriptor whose
/// last recv found its queue empty — EAGAIN, or fewer bytes than asked for — while
/// nothing has said since that more came (`tether_socket_may_have_input`): then -EAGAIN
/// without a system call. libssh2 reads the socket until EAGAIN in every read and again
/// before every write; on a loop that polls the socket level-triggered, those reads can
/// only say what the last one did. Returns bytes, or -errno as libssh2 expects.
long tether_recv_unless_drained(int fd, void *buffer, unsigned long length, int flags, void **abstract);
/// poll(2) said `fd` is readable (or hung up, or failed), or it is new or being closed:
/// its next recv goes to the kernel.
void tether_socket_may_have_input(int fd);
