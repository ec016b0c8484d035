// The hostile suite's shared pieces. Also points XDG_CONFIG_HOME at a temp dir for the whole test
// binary: no client or server started here reads or writes the real known_hosts, keys or token.
#include "hostile/hostile_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_stream.hpp"

namespace duplex::test {
namespace {

class IsolatedConfig : public ::testing::Environment {
 public:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    ::setenv("XDG_CONFIG_HOME", dir_->file("config").c_str(), 1);
    ::unsetenv("DUPLEX_TOKEN");
  }
  void TearDown() override { dir_.reset(); }

 private:
  std::unique_ptr<TempDir> dir_;
};

[[maybe_unused]] ::testing::Environment* const kIsolatedConfig =
    ::testing::AddGlobalTestEnvironment(new IsolatedConfig);

// A /proc file's bytes, or empty when the process is gone (POSIX read: ifstream throws when the
// process exits under it).
std::string read_proc_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

Usage usage_of(pid_t pid) {
  Usage u;
  u.fds = fd_count(pid);
  u.sockets = socket_fd_count(pid);
  u.rss_kib = rss_kib(pid);
  u.cpu_s = cpu_seconds(pid);
  u.children = children_of(pid).size();
  return u;
}

std::ostream& operator<<(std::ostream& os, const Usage& u) {
  return os << "fds " << u.fds << " (sockets " << u.sockets << "), RSS " << u.rss_kib
            << " KiB, CPU " << u.cpu_s << " s, children " << u.children;
}

std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const std::string stat = read_proc_file(it->path().string() + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    // After "(comm) ": state, ppid, pgrp.
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + close + 2, "%c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') out.push_back(std::stoi(name));
  }
  return out;
}

NoQuarantine::NoQuarantine()
    : env_("ASAN_OPTIONS",
           with_sanitizer_options("ASAN_OPTIONS",
                                  "quarantine_size_mb=0:thread_local_quarantine_size_kb=0")) {}

int connect_tcp(int port, const std::string& source) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  if (!source.empty()) {
    // The port is chosen at connect, with the destination known: thousands of short connections
    // from one source address do not run out of ports at bind.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("bind " + source + ": " + std::strerror(e));
    }
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                             std::strerror(e));
  }
  return fd;
}

bool send_bytes(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Crowd::Crowd(int port, std::size_t n, const std::string& source) {
  fds_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    fds_.push_back(connect_tcp(port, source));
    opened_.push_back(Clock::now());
  }
  closed_at_.resize(n);
  received_.resize(n);
}

Crowd::~Crowd() {
  close_all();
}

void Crowd::send_each(std::string_view bytes) {
  for (std::size_t i = 0; i < fds_.size(); ++i)
    send_to(i, bytes);
}

void Crowd::send_to(std::size_t i, std::string_view bytes) {
  if (fds_[i] >= 0 && !closed_at_[i] && !send_bytes(fds_[i], bytes)) closed_at_[i] = Clock::now();
}

void Crowd::poll(Ms timeout) {
  std::vector<pollfd> p;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    if (fds_[i] < 0 || closed_at_[i]) continue;
    p.push_back(pollfd{fds_[i], POLLIN | POLLRDHUP, 0});
    index.push_back(i);
  }
  if (p.empty()) return;
  if (::poll(p.data(), p.size(), static_cast<int>(timeout.count())) <= 0) return;
  const auto now = Clock::now();
  std::array<char, 4096> buf{};
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (p[k].revents == 0) continue;
    const std::size_t i = index[k];
    for (;;) {
      const ssize_t n = ::recv(fds_[i], buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        received_[i].append(buf.data(), static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        closed_at_[i] = now;  // EOF or reset
      break;
    }
  }
}

bool Crowd::wait_all_closed(Ms timeout) {
  const auto end = Clock::now() + timeout;
  for (;;) {
    poll(Ms(50));
    if (closed_count() == fds_.size()) return true;
    if (Clock::now() >= end) return false;
  }
}

std::size_t Crowd::closed_count() const {
  return static_cast<std::size_t>(std::count_if(closed_at_.begin(), closed_at_.end(),
                                                [](const auto& c) { return c.has_value(); }));
}

void Crowd::close_all() {
  for (auto& fd : fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

::testing::AssertionResult serves_raw_over_tls(const std::string& url, const std::string& message) {
  const auto talk =
      tls_talk(url, message, [&](const std::string& r) { return r.size() >= message.size(); });
  if (!talk.error.empty()) return ::testing::AssertionFailure() << url << ": " << talk.error;
  if (talk.received != ascii_upper(message))
    return ::testing::AssertionFailure() << url << ": got '" << talk.received << "'";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult fds_back(pid_t pid, const Usage& baseline, int listeners, Ms timeout) {
  if (eventually([&] { return socket_fd_count(pid) == listeners && fd_count(pid) <= baseline.fds; },
                 timeout))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "now " << usage_of(pid) << "; baseline " << baseline;
}

std::optional<RawFrame> first_frame(std::string_view bytes) {
  if (bytes.size() < 6) return std::nullopt;
  const std::uint32_t n = get_be32(bytes, 0);
  if (bytes.size() < 6 + static_cast<std::size_t>(n)) return std::nullopt;
  return RawFrame{static_cast<std::uint8_t>(bytes[4]), static_cast<std::uint8_t>(bytes[5]),
                  std::string(bytes.substr(6, n))};
}

RssPeak::RssPeak(pid_t pid)
    : thread_([this, pid] {
        while (!stop_.load()) {
          peak_.store(std::max(peak_.load(), rss_kib(pid)));
          std::this_thread::sleep_for(Ms(20));  // the sampling rate
        }
      }) {}

long RssPeak::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  return peak_.load();
}

double median(std::vector<double>& samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace duplex::test
