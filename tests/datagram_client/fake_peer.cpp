// FakePeer implementation: plain POSIX sockets and poll(2), so it shares no code with the client.
#include "datagram_client/fake_peer.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace duplex::test {
namespace {

std::string upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::string text_of(const sockaddr_storage& a, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (a.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in->sin6_port));
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(&a);
  const auto off = offsetof(sockaddr_un, sun_path);
  if (len <= off) return "";
  return std::string(un->sun_path, ::strnlen(un->sun_path, len - off));
}

}  // namespace

FakePeer::FakePeer(Family family, Policy policy, std::string unix_path)
    : policy_(std::move(policy)), path_(std::move(unix_path)) {
  const int domain = family == Family::v4 ? AF_INET : family == Family::v6 ? AF_INET6 : AF_UNIX;
  fd_ = ::socket(domain, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  other_fd_ = ::socket(domain, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || other_fd_ < 0) die("socket");
  sockaddr_storage a{};
  socklen_t len = 0;
  if (family == Family::v4) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *in;
  } else if (family == Family::v6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&a);
    in->sin6_family = AF_INET6;
    in->sin6_addr = in6addr_loopback;
    len = sizeof *in;
  } else {
    auto* un = reinterpret_cast<sockaddr_un*>(&a);
    un->sun_family = AF_UNIX;
    std::strncpy(un->sun_path, path_.c_str(), sizeof un->sun_path - 1);
    len = sizeof *un;
  }
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0) die("bind");
  if (family == Family::unix_dgram) {
    // The wrong source needs an address of its own, or the client could not tell it apart.
    sockaddr_un other{};
    other.sun_family = AF_UNIX;
    std::strncpy(other.sun_path, (path_ + ".other").c_str(), sizeof other.sun_path - 1);
    if (::bind(other_fd_, reinterpret_cast<sockaddr*>(&other), sizeof other) != 0) die("bind");
    url_ = "unixgram://" + path_;
  } else {
    len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) die("getsockname");
    url_ = "udp://" + text_of(a, len);
  }
  if (policy_.forward_port != 0) {
    upstream_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in up{};
    up.sin_family = AF_INET;
    up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    up.sin_port = htons(static_cast<std::uint16_t>(policy_.forward_port));
    if (upstream_fd_ < 0 ||
        ::connect(upstream_fd_, reinterpret_cast<sockaddr*>(&up), sizeof up) != 0)
      die("relay socket");
  }
  if (::pipe2(stop_, O_CLOEXEC) != 0) die("pipe2");
  thread_ = std::thread([this] { run(); });
}

FakePeer::~FakePeer() {
  if (::write(stop_[1], "x", 1) < 0) {
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : {fd_, other_fd_, upstream_fd_, stop_[0], stop_[1]})
    if (fd >= 0) ::close(fd);
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    ::unlink((path_ + ".other").c_str());
  }
}

std::size_t FakePeer::received() {
  std::lock_guard lock(mu_);
  return senders_.size();
}

std::vector<std::string> FakePeer::senders() {
  std::lock_guard lock(mu_);
  return senders_;
}

bool FakePeer::wait_received(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return arrived_.wait_for(lock, timeout, [&] { return senders_.size() >= n; });
}

void FakePeer::run() {
  std::vector<char> buf(256 * 1024);
  std::size_t replies = 0;
  for (;;) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    std::size_t index = 0;
    {
      std::lock_guard lock(mu_);
      index = senders_.size();
      senders_.push_back(text_of(from, len));
    }
    arrived_.notify_all();
    if (policy_.drop && policy_.drop(index)) continue;
    if (upstream_fd_ >= 0) {
      // One request at a time: the relay waits for the server's reply before reading on.
      if (::send(upstream_fd_, buf.data(), static_cast<std::size_t>(n), 0) < 0) continue;
      pollfd up{upstream_fd_, POLLIN, 0};
      if (::poll(&up, 1, 5000) <= 0) continue;
      const ssize_t m = ::recv(upstream_fd_, buf.data(), buf.size(), 0);
      if (m < 0 || (policy_.drop && policy_.drop(replies++))) continue;
      ::sendto(fd_, buf.data(), static_cast<std::size_t>(m), 0, reinterpret_cast<sockaddr*>(&from),
               len);
      continue;
    }
    if (policy_.wrong_source_first) {
      const std::string wrong = "WRONG SOURCE";
      ::sendto(other_fd_, wrong.data(), wrong.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
    std::string reply = policy_.constant_reply.empty()
                            ? upper(std::string(buf.data(), static_cast<std::size_t>(n)))
                            : policy_.constant_reply;
    // All copies in one system call: usually a duplicate is queued at the client before the
    // client, woken by the first, sends its next request; not always (the client must cope).
    std::vector<iovec> iov(static_cast<std::size_t>(policy_.copies),
                           iovec{reply.data(), reply.size()});
    std::vector<mmsghdr> msgs(iov.size());
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      msgs[i].msg_hdr.msg_name = &from;
      msgs[i].msg_hdr.msg_namelen = len;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    ::sendmmsg(fd_, msgs.data(), static_cast<unsigned>(msgs.size()), 0);
  }
}

}  // namespace duplex::test
