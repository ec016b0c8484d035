/* The baseline for bench/udp_bench: the smallest sensible UDP upper-echo, in C, as the tutorial
 * would write it: one socket, one thread, blocking recvfrom -> upper -> sendto, forever.
 * Usage: udp_echo_reference [HOST=127.0.0.1] [PORT=0]; prints "listening on udp://HOST:PORT". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  const char* host = argc > 1 ? argv[1] : "127.0.0.1";
  const int port = argc > 2 ? atoi(argv[2]) : 0;
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "bad IPv4 address %s\n", host);
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    perror("bind");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, (struct sockaddr*)&addr, &len);
  printf("listening on udp://%s:%d\n", host, ntohs(addr.sin_port));
  fflush(stdout);

  static unsigned char buf[65536];
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr*)&peer, &peer_len);
    if (n < 0) continue; /* an ICMP error about an earlier peer: serve on */
    for (ssize_t i = 0; i < n; ++i)
      if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 'a' - 'A';
    sendto(fd, buf, (size_t)n, 0, (struct sockaddr*)&peer, peer_len);
  }
}
