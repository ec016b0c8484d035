/* Reference for bench/suite.py: the tutorial's upper-echo as a hand-written single-threaded epoll
 * server would do it. Level-triggered: one read per readiness, upper-case it 16 bytes at a time,
 * write it back; what the socket does not take waits in a per-connection buffer (and reading
 * stops) until EPOLLOUT says it can go. An idle connection costs its socket and one slot in a
 * pointer table: buffers exist only while a write is partial.
 * Usage: epoll_upper [PORT=0]   (binds 127.0.0.1; prints "listening on tcp://127.0.0.1:PORT") */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kReadSize = 64 * 1024, kMaxEvents = 256 };

typedef unsigned char Vec16 __attribute__((vector_size(16)));

/* Bytes the socket has not taken yet; only a connection with a partial write has one. */
struct Pending {
  size_t off, len;
  unsigned char data[];
};

static struct Pending** pending; /* indexed by fd; NULL for a connection with nothing queued */
static size_t pending_cap;

static void upper(unsigned char* p, size_t n) {
  const Vec16 a = {0}, lo = a + ('a' - 1), hi = a + ('z' + 1), bit = a + 0x20;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec16 v;
    memcpy(&v, p + i, 16);
    /* Each comparison gives 0xff where true: the AND of both picks the bit to clear. */
    v -= (Vec16)((v > lo) & (v < hi)) & bit;
    memcpy(p + i, &v, 16);
  }
  for (; i < n; ++i)
    if (p[i] >= 'a' && p[i] <= 'z') p[i] = (unsigned char)(p[i] - 0x20);
}

static int slot_for(int fd) {
  if ((size_t)fd < pending_cap) return 0;
  size_t cap = pending_cap ? pending_cap : 1024;
  while (cap <= (size_t)fd)
    cap *= 2;
  struct Pending** grown = realloc(pending, cap * sizeof *grown);
  if (!grown) return -1;
  memset(grown + pending_cap, 0, (cap - pending_cap) * sizeof *grown);
  pending = grown;
  pending_cap = cap;
  return 0;
}

static void drop(int fd) {
  free(pending[fd]);
  pending[fd] = NULL;
  close(fd); /* also removes it from the epoll set */
}

/* Writes n bytes; keeps what the socket refuses. Returns 0, or -1 when the peer is gone. */
static int send_or_queue(int ep, int fd, const unsigned char* p, size_t n) {
  ssize_t w = 0;
  while ((size_t)w < n) {
    const ssize_t r = send(fd, p + w, n - (size_t)w, MSG_NOSIGNAL);
    if (r > 0) {
      w += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN) return -1;
    struct Pending* q = malloc(sizeof *q + (n - (size_t)w));
    if (!q) return -1;
    q->off = 0;
    q->len = n - (size_t)w;
    memcpy(q->data, p + w, q->len);
    pending[fd] = q;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
  }
  return 0;
}

static int flush_pending(int ep, int fd) {
  struct Pending* q = pending[fd];
  while (q->off < q->len) {
    const ssize_t r = send(fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL);
    if (r > 0) {
      q->off += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    return r < 0 && errno == EAGAIN ? 0 : -1;
  }
  free(q);
  pending[fd] = NULL;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void accept_all(int ep, int listener) {
  for (;;) {
    const int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) perror("accept4"); /* EMFILE: the backlog waits for a close */
      return;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (slot_for(fd) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) close(fd);
  }
}

int main(int argc, char** argv) {
  const int port = argc > 1 ? atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(listener, SOMAXCONN) != 0) {
    perror("listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr*)&addr, &len);
  printf("listening on tcp://127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) {
    perror("epoll");
    return 1;
  }
  static unsigned char buf[kReadSize];
  struct epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(ep, events, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        accept_all(ep, listener);
        continue;
      }
      if (pending[fd]) {
        if (flush_pending(ep, fd) != 0) drop(fd);
        continue;
      }
      const ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        upper(buf, (size_t)r);
        if (send_or_queue(ep, fd, buf, (size_t)r) != 0) drop(fd);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        drop(fd);
      }
    }
  }
}
