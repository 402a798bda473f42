#define _GNU_SOURCE
#include "CTetherPosix.h"
#include <fcntl.h>
#include <unistd.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <malloc.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/inotify.h>

int tether_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int tether_memfd_cloexec(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
int tether_accept4(int listener, int flags) { return accept4(listener, NULL, NULL, flags); }
ssize_t tether_splice(int from, int to, size_t count) {
    return splice(from, NULL, to, NULL, count, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int tether_peer_credentials(int fd, uid_t *uid, pid_t *pid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *uid = cred.uid;
    *pid = cred.pid;
    return 0;
}

short tether_posix_spawn_setsid_flag(void) {
#ifdef POSIX_SPAWN_SETSID
    return POSIX_SPAWN_SETSID;
#else
    return 0;
#endif
}

int tether_tcp_quickack(int fd) { int one = 1; return setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)); }
int tether_tcp_nodelay(int fd) { int one = 1; return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); }
int tether_wifexited(int status) { return WIFEXITED(status); }
int tether_wexitstatus(int status) { return WEXITSTATUS(status); }
int tether_wifsignaled(int status) { return WIFSIGNALED(status); }
int tether_wtermsig(int status) { return WTERMSIG(status); }
int tether_sock_cloexec(void) { return SOCK_CLOEXEC; }
int tether_sock_stream(void) { return SOCK_STREAM; }
int tether_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) { return posix_spawn_file_actions_addchdir_np(actions, path); }
int tether_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int tether_pidfd_getfd(int pidfd, int fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0); }
int tether_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int tether_malloc_trim(void) { return malloc_trim(0); }
void tether_malloc_for_streaming(void) {
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

int tether_posix_openpt(int flags) { return posix_openpt(flags); }
int tether_grantpt(int fd) { return grantpt(fd); }
int tether_unlockpt(int fd) { return unlockpt(fd); }
int tether_ptsname_r(int fd, char *buffer, size_t length) { return ptsname_r(fd, buffer, length); }

int tether_inotify_open(void) { return inotify_init1(IN_NONBLOCK | IN_CLOEXEC); }

int tether_inotify_watch_removals(int fd, const char *path) {
    return inotify_add_watch(fd, path, IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                                       IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK);
}

unsigned int tether_inotify_directory_gone_mask(void) {
    return IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW;
}

#include <string.h>
#include <errno.h>

long tether_send_with_descriptor(int socket, const void *bytes, unsigned long length, int descriptor) {
    struct iovec iov = { .iov_base = (void *)bytes, .iov_len = length };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof(control));
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.space, .msg_controllen = sizeof(control.space) };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
    return sendmsg(socket, &message, MSG_NOSIGNAL);
}

long tether_receive_with_descriptors(int socket, void *buffer, unsigned long length,
                                     int *descriptors, int capacity, int *count) {
    struct iovec iov = { .iov_base = buffer, .iov_len = length };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int) * 8)]; } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.space, .msg_controllen = sizeof(control.space) };
    *count = 0;
    long n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int received = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < received; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (*count < capacity) descriptors[(*count)++] = fd; else close(fd);
        }
    }
    return n;
}

long tether_send_nonblocking(int socket, const void *bytes, unsigned long length) {
    return send(socket, bytes, length, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Descriptors below this are tracked; a higher one is always read (never faked). */
#define TETHER_TRACKED_SOCKETS 4096
/* 1: the last recv(2) on the descriptor found nothing more waiting. Only the loop thread
   of a connection touches its descriptor's byte. */
static unsigned char tether_socket_drained[TETHER_TRACKED_SOCKETS];

long tether_recv_unless_drained(int fd, void *buffer, unsigned long length, int flags, void **abstract) {
    (void)abstract;
    int tracked = fd >= 0 && fd < TETHER_TRACKED_SOCKETS && !(flags & MSG_PEEK);
    if (tracked && tether_socket_drained[fd]) return -EAGAIN;
    ssize_t n = recv(fd, buffer, length, flags);
    if (n < 0) {
        int error = errno;
        if (error == EWOULDBLOCK || error == EAGAIN) {
            if (tracked) tether_socket_drained[fd] = 1;
            return -EAGAIN;
        }
        return -error;
    }
    /* A stream socket hands over what it holds, up to `length`: a short read emptied it. */
    if (tracked && n > 0 && (unsigned long)n < length) tether_socket_drained[fd] = 1;
    return n;
}

void tether_socket_may_have_input(int fd) {
    if (fd >= 0 && fd < TETHER_TRACKED_SOCKETS) tether_socket_drained[fd] = 0;
}
