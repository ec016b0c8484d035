// SocketClient implementation (plain POSIX sockets + poll).
#include "support/socket_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace duplex::test {

SocketClient::SocketClient(const std::string& url) {
  std::string u = url;
  if (u.rfind("unix://", 0) == 0) {
    const std::string path = u.substr(7);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("connect " + url + ": " + std::strerror(errno));
    return;
  }
  if (u.rfind("tcp://", 0) == 0) u = u.substr(6);
  const auto colon = u.rfind(':');
  std::string host = u.substr(0, colon);
  const int port = std::stoi(u.substr(colon + 1));
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
    fd_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET6, host.c_str(), &sa.sin6_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("connect " + url + ": " + std::strerror(errno));
  } else {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &sa.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("connect " + url + ": " + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

SocketClient::SocketClient(const std::string& url, const std::string& source) {
  std::string u = url.rfind("tcp://", 0) == 0 ? url.substr(6) : url;
  const auto colon = u.rfind(':');
  const std::string host = u.substr(0, colon);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  if (::inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1 ||
      ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0)
    throw std::runtime_error("bind " + source + ": " + std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoi(u.substr(colon + 1))));
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &sa.sin_addr) != 1 ||
      ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw std::runtime_error("connect " + url + " from " + source + ": " + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

SocketClient::~SocketClient() {
  close();
}
SocketClient::SocketClient(SocketClient&& o) noexcept : fd_(o.fd_) {
  o.fd_ = -1;
}

void SocketClient::send_all(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::optional<std::string> SocketClient::recv_some(std::size_t max,
                                                   std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r == 0) return std::nullopt;
  std::string buf(max, '\0');
  const ssize_t n = ::recv(fd_, buf.data(), max, 0);
  if (n <= 0) return std::string();
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

std::string SocketClient::recv_exact(std::size_t n, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw std::runtime_error("recv_exact: timeout after " + std::to_string(out.size()) +
                               " bytes");
    auto part = recv_some(n - out.size(), left);
    if (!part) continue;
    if (part->empty())
      throw std::runtime_error("recv_exact: EOF after " + std::to_string(out.size()) + " bytes");
    out += *part;
  }
  return out;
}

std::string SocketClient::recv_until_eof(std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("recv_until_eof: timeout");
    auto part = recv_some(65536, left);
    if (!part) continue;
    if (part->empty()) return out;
    out += *part;
  }
}

bool SocketClient::wait_closed(std::chrono::milliseconds timeout) {
  try {
    recv_until_eof(timeout);
    return true;
  } catch (...) {
    return false;
  }
}

void SocketClient::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

void SocketClient::reset() {
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close();
}

void SocketClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string SocketClient::local_address() const {
  sockaddr_in a{};
  socklen_t n = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n) != 0 || a.sin_family != AF_INET)
    return {};
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
}

std::string frame(std::uint8_t type, std::string_view payload) {
  std::string f;
  const auto n = static_cast<std::uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 24));
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back('\0');
  f.append(payload);
  return f;
}

std::string preface_and_hello(std::string_view agent) {
  std::string hello;
  hello += std::string("\x00\x01\x00\x01", 4);  // min version 1, max version 1
  const auto n = static_cast<std::uint32_t>(agent.size());
  hello.push_back(static_cast<char>(n >> 24));
  hello.push_back(static_cast<char>(n >> 16));
  hello.push_back(static_cast<char>(n >> 8));
  hello.push_back(static_cast<char>(n));
  hello.append(agent);
  return std::string("\0DPX", 4) + frame(0x01, hello);
}

}  // namespace duplex::test
