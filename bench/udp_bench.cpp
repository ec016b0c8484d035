// UDP upper service throughput: `duplex serve` beside bench/udp_echo_reference.c (a minimal C
// upper-echo: blocking recvfrom/sendto on one thread), both measured in the same run:
//   ping-pong round trips per second, 1 peer and 50 peers (each peer: one datagram, its reply,
//   the next); replies per second under a flood (4 sockets sending as fast as they can).
// Usage: udp_bench DUPLEX_BINARY REFERENCE_BINARY [seconds=3] [size=64] [rounds=2] [serve args]
// Starts and stops both servers itself, on 127.0.0.1 port 0.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "udp_bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15).
double cpu_seconds(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char buf[1024] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p) return 0;
  unsigned long utime = 0, stime = 0;
  // After ") ": state is field 3; utime and stime are fields 14 and 15.
  std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// A server under test: spawned with its stdout on a pipe, ready once it prints its address.
struct Server {
  pid_t pid = -1;
  sockaddr_in addr{};

  Server(std::vector<std::string> args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) die("spawn");
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n')
      line += c;
    ::close(out[0]);
    const auto colon = line.rfind(':');
    if (line.rfind("listening on udp://127.0.0.1:", 0) != 0 || colon == std::string::npos) {
      errno = EINVAL;
      die(args[0] + " did not start (" + line + ")");
    }
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1))));
  }
  ~Server() {
    ::kill(pid, SIGTERM);
    int st;
    ::waitpid(pid, &st, 0);
  }
};

int connected_socket(const sockaddr_in& to) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  const int buf = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) die("connect");
  return fd;
}

/// Each of `peers` sockets keeps one datagram in flight: send, wait for the reply, send again.
/// A reply that does not come within 200 ms counts as lost and the peer sends anew.
double ping_pong(const sockaddr_in& to, int peers, std::size_t size, double seconds, long* lost) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> fds;
  std::vector<Clock::time_point> sent_at(static_cast<std::size_t>(peers));
  const std::string payload(size, 'x');
  for (int i = 0; i < peers; ++i) {
    fds.push_back(connected_socket(to));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fds.back(), &ev);
  }
  long replies = 0;
  *lost = 0;
  const auto start = Clock::now();
  for (int i = 0; i < peers; ++i) {
    ::send(fds[static_cast<std::size_t>(i)], payload.data(), size, 0);
    sent_at[static_cast<std::size_t>(i)] = start;
  }
  std::array<epoll_event, 64> events;
  std::vector<char> buf(65536);
  while (seconds_since(start) < seconds) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 50);
    for (int e = 0; e < n; ++e) {
      const std::size_t i = events[static_cast<std::size_t>(e)].data.u32;
      while (::recv(fds[i], buf.data(), buf.size(), 0) >= 0) {
        if (buf[0] != 'X' && size > 0) die("wrong reply");
        ++replies;
        ::send(fds[i], payload.data(), size, 0);
        sent_at[i] = Clock::now();
      }
    }
    const auto now = Clock::now();
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (now - sent_at[i] > std::chrono::milliseconds(200)) {
        ++*lost;
        ::send(fds[i], payload.data(), size, 0);
        sent_at[i] = now;
      }
  }
  const double rate = static_cast<double>(replies) / seconds_since(start);
  for (int fd : fds)
    ::close(fd);
  ::close(ep);
  return rate;
}

/// `senders` sockets each send batches of 32 datagrams (sendmmsg) as fast as they can, and read
/// whatever replies have come in between; returns replies per second, and the send rate.
double flood(const sockaddr_in& to, int senders, std::size_t size, double seconds,
             double* sent_rate) {
  constexpr unsigned kBatch = 32;
  std::vector<int> fds;
  for (int i = 0; i < senders; ++i)
    fds.push_back(connected_socket(to));
  std::vector<char> out(size, 'f');
  std::array<iovec, kBatch> out_iov{};
  std::array<mmsghdr, kBatch> out_msgs{};
  for (unsigned i = 0; i < kBatch; ++i) {
    out_iov[i] = {out.data(), size};
    out_msgs[i].msg_hdr.msg_iov = &out_iov[i];
    out_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  std::vector<char> in(kBatch * 2048);
  std::array<iovec, kBatch> in_iov{};
  std::array<mmsghdr, kBatch> in_msgs{};
  for (unsigned i = 0; i < kBatch; ++i) {
    in_iov[i] = {in.data() + i * 2048, 2048};
    in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
    in_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long sent = 0, replies = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    for (int fd : fds) {
      const int n = ::sendmmsg(fd, out_msgs.data(), kBatch, 0);
      if (n > 0) sent += n;
      int r;
      while ((r = ::recvmmsg(fd, in_msgs.data(), kBatch, MSG_DONTWAIT, nullptr)) > 0)
        replies += r;
    }
  }
  const double elapsed = seconds_since(start);
  for (int fd : fds)
    ::close(fd);
  *sent_rate = static_cast<double>(sent) / elapsed;
  return static_cast<double>(replies) / elapsed;
}

struct Measured {
  double rate = 0;        // replies per second
  double server_cpu = 0;  // the server's CPU time over the run, as a fraction of one core
  std::string note;
};

/// Starts the server, runs `load` against it, and reads the server's CPU time around the load.
template <class Load>
Measured measure(std::vector<std::string> server_args, Load load) {
  Server s(std::move(server_args));
  const double cpu = cpu_seconds(s.pid);
  const auto t = Clock::now();
  Measured m;
  m.rate = load(s.addr, m.note);
  m.server_cpu = (cpu_seconds(s.pid) - cpu) / seconds_since(t);
  return m;
}

// Rates, and the server's CPU time per reply: the rate depends on the client and on whatever
// else runs; CPU per reply is the server's own cost.
void report(const std::string& what, const Measured& reference, const Measured& duplex) {
  auto us_per_reply = [](const Measured& m) { return 1e6 * m.server_cpu / m.rate; };
  std::printf("| %s | %.0f /s (%.1f us) | %.0f /s (%.1f us) | %.2fx |%s%s\n", what.c_str(),
              reference.rate, us_per_reply(reference), duplex.rate, us_per_reply(duplex),
              duplex.rate / reference.rate, reference.note.c_str(), duplex.note.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: udp_bench DUPLEX_BINARY REFERENCE_BINARY [seconds=3] [size=64] "
                 "[rounds=2] [serve args...]\n");
    return 2;
  }
  const std::string duplex_bin = argv[1], reference_bin = argv[2];
  const double seconds = argc > 3 ? std::atof(argv[3]) : 3.0;
  const std::size_t size = argc > 4 ? static_cast<std::size_t>(std::atol(argv[4])) : 64;
  const int rounds = argc > 5 ? std::atoi(argv[5]) : 2;
  ::signal(SIGPIPE, SIG_IGN);

  // Servers on CPU 1, this client on CPU 0 (when there are two and taskset is there): a
  // ping-pong's rate swings with where the scheduler puts the two ends, so fix it for both.
  std::vector<std::string> pin;
  cpu_set_t client_cpu;
  CPU_ZERO(&client_cpu);
  CPU_SET(0, &client_cpu);
  if (::sysconf(_SC_NPROCESSORS_ONLN) >= 2 && ::access("/usr/bin/taskset", X_OK) == 0 &&
      ::sched_setaffinity(0, sizeof client_cpu, &client_cpu) == 0)
    pin = {"/usr/bin/taskset", "-c", "1"};
  std::vector<std::string> reference = pin, duplex = pin;
  reference.insert(reference.end(), {reference_bin, "127.0.0.1", "0"});
  duplex.insert(duplex.end(), {duplex_bin, "serve", "--listen", "udp://127.0.0.1:0", "-q"});
  for (int i = 6; i < argc; ++i)
    duplex.push_back(argv[i]);
  std::printf("%s\n", pin.empty() ? "not pinned" : "servers on CPU 1, client on CPU 0");
  std::printf(
      "| run (%zu-byte datagrams, %.0f s each) | C reference (server CPU per reply) | duplex "
      "(server CPU per reply) | ratio |\n|---|---:|---:|---:|\n",
      size, seconds);
  for (int round = 1; round <= rounds; ++round) {
    for (const int peers : {1, 50}) {
      auto load = [&](const sockaddr_in& to, std::string& note) {
        long lost = 0;
        const double rate = ping_pong(to, peers, size, seconds, &lost);
        if (lost) note += " lost " + std::to_string(lost);
        return rate;
      };
      const Measured ref = measure(reference, load);
      const Measured dup = measure(duplex, load);
      report("ping-pong, " + std::to_string(peers) + (peers > 1 ? " peers" : " peer") + ", run " +
                 std::to_string(round),
             ref, dup);
    }
    auto load = [&](const sockaddr_in& to, std::string& note) {
      double sent = 0;
      const double rate = flood(to, 4, size, seconds, &sent);
      char text[64];
      std::snprintf(text, sizeof text, " sent %.0f /s", sent);
      note += text;
      return rate;
    };
    const Measured ref = measure(reference, load);
    const Measured dup = measure(duplex, load);
    report("flood, 4 senders, run " + std::to_string(round), ref, dup);
  }
  return 0;
}
