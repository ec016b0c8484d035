// A blocking datagram peer for tests: one UDP (IPv4/IPv6) or Unix datagram socket, with bounded
// waits, written with plain system calls so that it checks the server independently of our code.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace duplex::test {

using namespace std::chrono_literals;

/// A datagram address: udp://IPV4:PORT, udp://[IPV6]:PORT or unixgram:///path.
struct DatagramAddress {
  sockaddr_storage sa{};
  socklen_t len = 0;
  int family() const { return sa.ss_family; }

  static DatagramAddress parse(const std::string& url) {
    DatagramAddress a;
    if (url.rfind("unixgram://", 0) == 0) {
      const std::string path = url.substr(11);
      auto& un = reinterpret_cast<sockaddr_un&>(a.sa);
      un.sun_family = AF_UNIX;
      if (path.size() >= sizeof un.sun_path) throw std::runtime_error("path too long: " + path);
      std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
      a.len = sizeof un;
      return a;
    }
    if (url.rfind("udp://", 0) != 0) throw std::runtime_error("not a datagram url: " + url);
    const std::string rest = url.substr(6);
    const auto colon = rest.rfind(':');
    std::string host = rest.substr(0, colon);
    const auto port = static_cast<std::uint16_t>(std::stoi(rest.substr(colon + 1)));
    if (!host.empty() && host.front() == '[') {
      host = host.substr(1, host.size() - 2);
      auto& in6 = reinterpret_cast<sockaddr_in6&>(a.sa);
      in6.sin6_family = AF_INET6;
      in6.sin6_port = htons(port);
      if (::inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) != 1)
        throw std::runtime_error("bad IPv6 address " + host);
      a.len = sizeof in6;
    } else {
      auto& in = reinterpret_cast<sockaddr_in&>(a.sa);
      in.sin_family = AF_INET;
      in.sin_port = htons(port);
      if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1)
        throw std::runtime_error("bad IPv4 address " + host);
      a.len = sizeof in;
    }
    return a;
  }
};

/// One socket talking to one server address. A Unix peer binds its own path (the reply address)
/// beside `unix_dir` unless `bind_unix` is false, and removes it when destroyed.
class DatagramPeer {
 public:
  explicit DatagramPeer(const std::string& server_url, const std::string& unix_dir = "/tmp",
                        bool bind_unix = true)
      : to_(DatagramAddress::parse(server_url)) {
    fd_ = ::socket(to_.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (to_.family() == AF_UNIX && bind_unix) {
      static std::atomic<int> counter{0};
      path_ = unix_dir + "/p" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
      sockaddr_un un{};
      un.sun_family = AF_UNIX;
      std::memcpy(un.sun_path, path_.c_str(), path_.size() + 1);
      ::unlink(path_.c_str());
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0)
        throw std::runtime_error("bind " + path_ + ": " + std::strerror(errno));
    }
  }
  ~DatagramPeer() {
    close();
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  DatagramPeer(const DatagramPeer&) = delete;
  DatagramPeer& operator=(const DatagramPeer&) = delete;

  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  /// Sends one datagram to the server; returns errno (0 when sent).
  int send(std::string_view data) { return send_to(to_, data); }
  int send_to(const DatagramAddress& to, std::string_view data) {
    const auto n = ::sendto(fd_, data.data(), data.size(), 0,
                            reinterpret_cast<const sockaddr*>(&to.sa), to.len);
    return n < 0 ? errno : 0;
  }

  /// The next datagram (whole: up to 256 KiB), or nullopt when none comes within `timeout`.
  std::optional<std::string> recv(std::chrono::milliseconds timeout = 5s,
                                  sockaddr_storage* from = nullptr) {
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready <= 0) return std::nullopt;
    std::string buf(256 * 1024, '\0');
    sockaddr_storage sender{};
    socklen_t len = sizeof sender;
    const auto n =
        ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&sender), &len);
    if (n < 0) return std::nullopt;
    if (from) *from = sender;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

  /// Sends and waits for the reply, resending up to `tries` times (a datagram may be lost when
  /// the server's queue is full, e.g. right after a flood).
  std::optional<std::string> ask(std::string_view data, int tries = 1,
                                 std::chrono::milliseconds timeout = 5s) {
    for (int i = 0; i < tries; ++i) {
      if (send(data) != 0) continue;
      if (auto r = recv(timeout)) return r;
    }
    return std::nullopt;
  }

 private:
  DatagramAddress to_;
  int fd_ = -1;
  std::string path_;
};

}  // namespace duplex::test
