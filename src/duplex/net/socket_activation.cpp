// Socket activation: LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES read, checked and taken away.
#include "duplex/net/socket_activation.hpp"
#include "duplex/core/errors.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace duplex::net {
namespace {

// sd_listen_fds(3): the first passed fd is always 3.
constexpr int kFirstFd = 3;
// More than any unit would pass; bounds the loop against a garbage LISTEN_FDS.
constexpr long kMaxFds = 1024;

std::optional<long> parse_number(const char* text) {
  if (text == nullptr) return std::nullopt;
  const std::string_view s(text);
  long value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::vector<std::string> split_names(const char* text) {
  std::vector<std::string> out;
  if (text == nullptr) return out;
  std::string_view s(text);
  for (;;) {
    const auto colon = s.find(':');
    out.emplace_back(s.substr(0, colon));
    if (colon == std::string_view::npos) break;
    s.remove_prefix(colon + 1);
  }
  return out;
}

void forget_environment() {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

}  // namespace

Result<Endpoint> socket_endpoint(int fd) {
  int type = 0;
  socklen_t type_len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0)
    return fail(errno_code(errno),
                fmt::format("fd {}: not a socket ({})", fd, std::strerror(errno)));
  if (type != SOCK_STREAM && type != SOCK_DGRAM)
    return fail(errno_code(ESOCKTNOSUPPORT),
                fmt::format("fd {}: a socket of type {}; only stream and datagram sockets are "
                            "served",
                            fd, type));
  const bool stream = type == SOCK_STREAM;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return fail(errno_code(errno), fmt::format("fd {}: getsockname: {}", fd, std::strerror(errno)));
  Endpoint ep;
  std::array<char, INET6_ADDRSTRLEN> text{};
  switch (ss.ss_family) {
    case AF_INET: {
      const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
      ::inet_ntop(AF_INET, &a.sin_addr, text.data(), text.size());
      ep.transport = stream ? Transport::tcp : Transport::udp;
      ep.host = text.data();
      ep.port = ntohs(a.sin_port);
      return ep;
    }
    case AF_INET6: {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
      ::inet_ntop(AF_INET6, &a.sin6_addr, text.data(), text.size());
      ep.transport = stream ? Transport::tcp : Transport::udp;
      ep.host = text.data();
      ep.port = ntohs(a.sin6_port);
      return ep;
    }
    case AF_UNIX: {
      const auto& a = reinterpret_cast<const sockaddr_un&>(ss);
      const std::size_t max =
          len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
      // An abstract socket (leading NUL) or an unnamed one has no path to serve on.
      if (max == 0 || a.sun_path[0] == '\0')
        return fail(errno_code(EAFNOSUPPORT),
                    fmt::format("fd {}: an abstract or unnamed Unix socket; give it a path", fd));
      ep.transport = stream ? Transport::unix_stream : Transport::unix_dgram;
      ep.path.assign(a.sun_path, ::strnlen(a.sun_path, max));
      return ep;
    }
    default:
      return fail(errno_code(EAFNOSUPPORT),
                  fmt::format("fd {}: address family {} is not served (TCP, UDP and Unix are)", fd,
                              ss.ss_family));
  }
}

Result<std::vector<InheritedSocket>> take_inherited_sockets() {
  const auto pid = parse_number(std::getenv("LISTEN_PID"));
  const char* fds_text = std::getenv("LISTEN_FDS");
  const auto count = parse_number(fds_text);
  const auto names = split_names(std::getenv("LISTEN_FDNAMES"));
  forget_environment();
  std::vector<InheritedSocket> out;
  if (!pid || *pid != static_cast<long>(::getpid())) return out;  // meant for another process
  if (!count || *count < 0 || *count > kMaxFds)
    return fail(errno_code(EINVAL), fmt::format("LISTEN_FDS={}: not a number of sockets (0-{})",
                                                fds_text ? fds_text : "", kMaxFds));
  for (int fd = kFirstFd; fd < kFirstFd + static_cast<int>(*count); ++fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0)
      return fail(errno_code(EBADF), fmt::format("LISTEN_FDS={}: fd {} is not open", *count, fd));
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    int type = 0;
    int listening = 0;
    socklen_t l = sizeof type;
    // A connected stream socket first: its own address may be unnamed (a socketpair).
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM &&
        (l = sizeof listening, ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l)) == 0 &&
        listening == 0)
      return fail(errno_code(EINVAL),
                  fmt::format("LISTEN_FDS: fd {} is a stream socket that is not listening (a "
                              "socket unit with Accept=yes passes one connection: serve it with "
                              "duplex serve --inetd)",
                              fd));
    auto ep = socket_endpoint(fd);
    if (!ep) return fail(ep.error(), fmt::format("LISTEN_FDS: {}", ep.message()));
    InheritedSocket s;
    s.fd = fd;
    const auto i = static_cast<std::size_t>(fd - kFirstFd);
    if (i < names.size()) s.name = names[i];
    s.endpoint = std::move(*ep);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace duplex::net
