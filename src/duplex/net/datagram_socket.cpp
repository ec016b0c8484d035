// DatagramSocket: binding with the server's address rules (no port sharing for unicast, owner-only
// Unix files, stale files replaced only when dead), multicast membership, and recvmmsg/sendmmsg
// over reusable slots.
#include "duplex/net/datagram_socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "duplex/core/errors.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/socket_activation.hpp"

namespace duplex::net {
namespace {

// A receive queue deep enough to absorb a burst from many peers while a batch is answered
// (capped by net.core.rmem_max); and, for Unix sockets, room for the replies still queued at
// slow peers (each peer queues at most net.unix.max_dgram_qlen of ours; a full one gets EAGAIN).
constexpr int kReceiveBuffer = 4 << 20;
constexpr int kUnixSendBuffer = 4 << 20;

Failure bind_failure(const Endpoint& ep, int e) {
  const auto ec = errno_code(e);
  if (e == EADDRINUSE)
    return fail(ec, fmt::format("cannot listen on {}: address already in use (is another "
                                "server running?)",
                                ep.url()));
  if (e == EACCES) return fail(ec, fmt::format("cannot listen on {}: permission denied", ep.url()));
  if (e == EADDRNOTAVAIL)
    return fail(
        ec, fmt::format("cannot listen on {}: address not available on this machine", ep.url()));
  return fail(ec, fmt::format("cannot listen on {}: {}", ep.url(), std::strerror(e)));
}

Failure errno_failure(const Endpoint& ep, const char* what) {
  const int e = errno;
  return fail(errno_code(e),
              fmt::format("cannot listen on {}: {}: {}", ep.url(), what, std::strerror(e)));
}

// Numeric addresses (an IPv6 zone becomes the scope id) or a name, resolved for binding.
Result<ip::udp::endpoint> resolve_for_bind(const Endpoint& ep) {
  std::error_code ec;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (!ec) return ip::udp::endpoint(addr, ep.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(ep.host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr)
    return fail(errno_code(EADDRNOTAVAIL),
                fmt::format("cannot listen on {}: cannot resolve '{}'", ep.url(), ep.host));
  ip::udp::endpoint where;
  std::memcpy(where.data(), found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
  where.port(ep.port);
  return where;
}

/// An fd that is closed unless released: every early return of open() closes the socket.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool set_int(int fd, int level, int name, int value) noexcept {
  return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
}

// Interface index for a multicast join: the IPv6 zone, else --multicast-if, else 0 (the kernel
// picks the interface of the route to the group).
Result<unsigned> group_interface(const Endpoint& ep, const ip::address& group,
                                 const std::string& name) {
  if (group.is_v6() && group.to_v6().scope_id() != 0) return group.to_v6().scope_id();
  if (name.empty()) return 0u;
  const unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0)
    return fail(errno_code(ENODEV), fmt::format("cannot listen on {}: no network interface "
                                                "named '{}' (--multicast-if)",
                                                ep.url(), name));
  return index;
}

// A link-scope IPv6 group (ff02::/16) exists once per interface: binding it needs one, from the
// zone or --multicast-if.
Status scope_group(const Endpoint& ep, ip::udp::endpoint& where, const std::string& name) {
  if (!where.address().is_v6()) return {};
  ip::address_v6 a = where.address().to_v6();
  if (!a.is_multicast_link_local() || a.scope_id() != 0) return {};
  if (name.empty())
    return fail(errno_code(EINVAL),
                fmt::format("cannot listen on {}: a link-local group needs an interface: add it "
                            "as a zone ([{}%eth0]) or give --multicast-if",
                            ep.url(), a.to_string()));
  auto index = group_interface(ep, a, name);
  if (!index) return std::move(index).failure();
  a.scope_id(*index);
  where.address(a);
  return {};
}

std::string interface_name(unsigned index) {
  if (index == 0) return "the default interface";
  std::array<char, IF_NAMESIZE> name{};
  if (::if_indextoname(index, name.data()) == nullptr) return fmt::format("interface {}", index);
  return name.data();
}

Result<std::string> join_group(int fd, const Endpoint& ep, const ip::address& group,
                               const std::string& multicast_if) {
  auto index = group_interface(ep, group, multicast_if);
  if (!index) return std::move(index).failure();
  int rc = 0;
  if (group.is_v4()) {
    ip_mreqn req{};
    req.imr_multiaddr.s_addr = htonl(group.to_v4().to_uint());
    req.imr_ifindex = static_cast<int>(*index);
    rc = ::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &req, sizeof req);
  } else {
    ipv6_mreq req{};
    const auto bytes = group.to_v6().to_bytes();
    std::memcpy(&req.ipv6mr_multiaddr, bytes.data(), bytes.size());
    req.ipv6mr_interface = *index;
    rc = ::setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &req, sizeof req);
  }
  if (rc != 0) return errno_failure(ep, "cannot join the multicast group");
  std::string where = interface_name(*index);
  // The zone is part of an IPv6 address's text; say the group without it.
  std::string text = group.to_string();
  if (const auto pct = text.find('%'); pct != std::string::npos) text.resize(pct);
  return fmt::format("{} on {}", text, where);
}

// Unix socket files outlive crashed servers. Replace one only when sending to it is refused, so
// starting a second server never steals a live server's address. A stream server's file (the
// datagram connect says EPROTOTYPE) is live too.
Status prepare_unix_path(const Endpoint& ep) {
  struct stat st {};
  if (::lstat(ep.path.c_str(), &st) != 0) return {};  // nothing there
  if (!S_ISSOCK(st.st_mode))
    return fail(errno_code(EADDRINUSE),
                fmt::format("cannot listen on {}: the path exists and is not a socket", ep.url()));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_failure(ep, "socket");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, ep.path.c_str(), ep.path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  const int err = errno;
  ::close(fd);
  if (rc == 0 || err == EPROTOTYPE)
    return fail(errno_code(EADDRINUSE),
                fmt::format("cannot listen on {}: another server is bound there", ep.url()));
  if (err != ECONNREFUSED)
    return fail(errno_code(err), fmt::format("cannot listen on {}: existing socket file: {}",
                                             ep.url(), std::strerror(err)));
  ::unlink(ep.path.c_str());
  return {};
}

Result<DatagramSocket> fail_with(Failure f) {
  return Result<DatagramSocket>(std::move(f));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DatagramBatch

struct DatagramBatch::Slot {
  ::sockaddr_storage peer{};
  ::iovec in{}, out{};
  // Room for one IP_PKTINFO or IPV6_PKTINFO control message, each way.
  alignas(::cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(::in6_pktinfo))> control_in{};
  alignas(::cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(::in6_pktinfo))> control_out{};
  std::size_t control_out_len = 0;
  socklen_t peer_len = 0;
  std::size_t len = 0;
  std::size_t reply_len = 0;
  bool truncated = false;
  bool reply = false;
};

DatagramBatch::DatagramBatch(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      data_(std::make_unique_for_overwrite<std::byte[]>(capacity_ * kMaxDatagram)),
      slots_(capacity_),
      in_(capacity_),
      out_(capacity_) {
  for (std::size_t i = 0; i < capacity_; ++i) {
    Slot& s = slots_[i];
    s.in = {data_.get() + i * kMaxDatagram, kMaxDatagram};
    ::msghdr& h = in_[i].msg_hdr;
    h.msg_name = &s.peer;
    h.msg_iov = &s.in;
    h.msg_iovlen = 1;
    h.msg_control = s.control_in.data();
  }
}

DatagramBatch::~DatagramBatch() = default;

std::span<std::byte> DatagramBatch::datagram(std::size_t i) noexcept {
  return {data_.get() + i * kMaxDatagram, slots_[i].len};
}

std::span<std::byte> DatagramBatch::buffer(std::size_t i) noexcept {
  return {data_.get() + i * kMaxDatagram, kMaxDatagram};
}

bool DatagramBatch::truncated(std::size_t i) const noexcept {
  return slots_[i].truncated;
}

bool DatagramBatch::has_sender(std::size_t i) const noexcept {
  // An unbound Unix socket's address is just the family (unix(7): "unnamed").
  return slots_[i].peer_len > sizeof(sa_family_t);
}

std::string DatagramBatch::sender(std::size_t i) const {
  const Slot& s = slots_[i];
  if (!has_sender(i)) return "unnamed";
  std::array<char, INET6_ADDRSTRLEN> text{};
  switch (s.peer.ss_family) {
    case AF_INET: {
      const auto& a = reinterpret_cast<const sockaddr_in&>(s.peer);
      ::inet_ntop(AF_INET, &a.sin_addr, text.data(), text.size());
      return fmt::format("{}:{}", text.data(), ntohs(a.sin_port));
    }
    case AF_INET6: {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(s.peer);
      ::inet_ntop(AF_INET6, &a.sin6_addr, text.data(), text.size());
      return fmt::format("[{}]:{}", text.data(), ntohs(a.sin6_port));
    }
    case AF_UNIX: {
      const auto& a = reinterpret_cast<const sockaddr_un&>(s.peer);
      const std::size_t n = s.peer_len - offsetof(sockaddr_un, sun_path);
      if (a.sun_path[0] == '\0')  // abstract namespace: unix(7)
        return fmt::format("unixgram://@{}", std::string_view(a.sun_path + 1, n - 1));
      return fmt::format("unixgram://{}", std::string_view(a.sun_path, ::strnlen(a.sun_path, n)));
    }
    default: return "unknown";
  }
}

void DatagramBatch::reply(std::size_t i, std::size_t n) noexcept {
  slots_[i].reply = true;
  slots_[i].reply_len = std::min(n, kMaxDatagram);
}

// ---------------------------------------------------------------------------------------------
// DatagramSocket

Result<DatagramSocket> DatagramSocket::open(const Endpoint& ep, const DatagramOptions& options) {
  if (ep.transport == Transport::unix_dgram) {
    sockaddr_un sa{};
    if (ep.path.size() >= sizeof sa.sun_path)
      return fail_with(fail(errno_code(ENAMETOOLONG),
                            fmt::format("cannot listen on {}: the path is longer than {} bytes",
                                        ep.url(), sizeof sa.sun_path - 1)));
    if (auto ready = prepare_unix_path(ep); !ready) return fail_with(std::move(ready).failure());
    OwnedFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (s.get() < 0) return fail_with(errno_failure(ep, "socket"));
    const int fd = s.get();
    set_int(fd, SOL_SOCKET, SO_SNDBUF, kUnixSendBuffer);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, ep.path.c_str(), ep.path.size() + 1);
    // The socket file's mode comes from the umask at bind(); owner-only from the first instant.
    const mode_t old = ::umask(0177);
    const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    const int err = errno;
    ::umask(old);
    if (rc != 0) return fail_with(bind_failure(ep, err));
    struct stat st {};
    const bool have_id = ::stat(ep.path.c_str(), &st) == 0;
    DatagramSocket out(s.release(), ep, false);
    if (have_id) out.owned_path_id_ = {st.st_dev, st.st_ino};
    return out;
  }
  if (ep.transport != Transport::udp)
    return fail_with(fail(errno_code(EPROTONOSUPPORT),
                          fmt::format("cannot listen on {}: not a datagram transport", ep.url())));

  auto where = resolve_for_bind(ep);
  if (!where) return fail_with(std::move(where).failure());
  if (auto scoped = scope_group(ep, *where, options.multicast_if); !scoped)
    return fail_with(std::move(scoped).failure());
  const ip::address addr = where->address();
  const bool v6 = addr.is_v6();
  const int family = v6 ? AF_INET6 : AF_INET;
  OwnedFd s(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP));
  if (s.get() < 0) return fail_with(errno_failure(ep, "socket"));
  const int fd = s.get();
  // Several servers may share a group's port on one host (each gets every datagram); a unicast
  // port is never shared: see the header.
  if (addr.is_multicast() && !set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1))
    return fail_with(errno_failure(ep, "SO_REUSEADDR"));
  if (v6 && !set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1))
    return fail_with(errno_failure(ep, "IPV6_V6ONLY"));
  // Only a wildcard socket has a choice of source address to get wrong; elsewhere the control
  // message would cost ~3% of the CPU per datagram for nothing (docs/BENCHMARKS.md).
  const bool pktinfo = addr.is_unspecified() && (v6 ? set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                                                    : set_int(fd, IPPROTO_IP, IP_PKTINFO, 1));
  set_int(fd, SOL_SOCKET, SO_RCVBUF, kReceiveBuffer);  // a hint: the kernel caps it
  if (::bind(fd, static_cast<const sockaddr*>(where->data()),
             static_cast<socklen_t>(where->size())) != 0)
    return fail_with(bind_failure(ep, errno));

  std::string group;
  if (addr.is_multicast()) {
    auto joined = join_group(fd, ep, addr, options.multicast_if);
    if (!joined) return fail_with(std::move(joined).failure());
    group = std::move(*joined);
  }

  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0)
    return fail_with(errno_failure(ep, "getsockname"));
  Endpoint bound = ep;
  bound.host = addr.to_string();
  bound.port = ntohs(v6 ? reinterpret_cast<const sockaddr_in6&>(local).sin6_port
                        : reinterpret_cast<const sockaddr_in&>(local).sin_port);

  DatagramSocket out(s.release(), std::move(bound), pktinfo);
  out.group_ = std::move(group);
  return out;
}

Result<DatagramSocket> DatagramSocket::adopt(int fd) {
  auto ep = socket_endpoint(fd);
  if (!ep) return fail_with(std::move(ep).failure());
  if (ep->is_stream())
    return fail_with(
        Failure{errno_code(EPROTOTYPE),
                fmt::format("cannot serve fd {} ({}): not a datagram socket", fd, ep->url())});
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
    return fail_with(errno_failure(*ep, "fcntl"));
  bool pktinfo = false;
  if (ep->transport == Transport::udp) {
    std::error_code ec;
    const auto addr = ip::make_address(ep->host, ec);
    if (!ec && addr.is_unspecified())
      pktinfo = addr.is_v6() ? set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                             : set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
  }
  return DatagramSocket(fd, std::move(*ep), pktinfo);
}

DatagramSocket::DatagramSocket(DatagramSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      bound_(std::move(o.bound_)),
      pktinfo_(o.pktinfo_),
      group_(std::move(o.group_)),
      owned_path_id_(std::exchange(o.owned_path_id_, std::nullopt)) {}

DatagramSocket::~DatagramSocket() {
  if (fd_ >= 0) ::close(fd_);
  if (!owned_path_id_) return;
  struct stat st {};
  if (::stat(bound_.path.c_str(), &st) == 0 && st.st_dev == owned_path_id_->first &&
      st.st_ino == owned_path_id_->second)
    ::unlink(bound_.path.c_str());
}

Result<std::size_t> DatagramSocket::receive(DatagramBatch& batch, bool wait) noexcept {
  batch.size_ = 0;
  for (std::size_t i = 0; i < batch.capacity_; ++i) {
    ::msghdr& h = batch.in_[i].msg_hdr;
    h.msg_namelen = sizeof(::sockaddr_storage);
    h.msg_controllen = pktinfo_ ? batch.slots_[i].control_in.size() : 0;
    h.msg_flags = 0;
  }
  int n = 0;
  do {
    // MSG_WAITFORONE: block for the first datagram only, then take what else is queued.
    n = ::recvmmsg(fd_, batch.in_.data(), static_cast<unsigned>(batch.capacity_),
                   wait ? MSG_WAITFORONE : MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return errno_code(errno);
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    DatagramBatch::Slot& s = batch.slots_[i];
    ::msghdr& h = batch.in_[i].msg_hdr;
    s.len = batch.in_[i].msg_len;
    s.truncated = (h.msg_flags & MSG_TRUNC) != 0;
    s.peer_len = h.msg_namelen;
    s.reply = false;
    s.control_out_len = 0;
    if (!pktinfo_) continue;
    // Answer from the address the datagram was sent to: for IPv4 the kernel's ipi_spec_dst is
    // exactly that (or the interface's address for a broadcast or group datagram, ip(7)); an
    // IPv6 group address cannot be a source, so then the kernel chooses.
    for (::cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      ::msghdr out{};
      out.msg_control = s.control_out.data();
      out.msg_controllen = s.control_out.size();
      ::cmsghdr* o = CMSG_FIRSTHDR(&out);
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        ::in_pktinfo got{};
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        ::in_pktinfo use{};
        use.ipi_spec_dst = got.ipi_spec_dst;
        o->cmsg_level = IPPROTO_IP;
        o->cmsg_type = IP_PKTINFO;
        o->cmsg_len = CMSG_LEN(sizeof use);
        std::memcpy(CMSG_DATA(o), &use, sizeof use);
        s.control_out_len = CMSG_SPACE(sizeof use);
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        ::in6_pktinfo got{};
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        if (IN6_IS_ADDR_MULTICAST(&got.ipi6_addr)) continue;
        o->cmsg_level = IPPROTO_IPV6;
        o->cmsg_type = IPV6_PKTINFO;
        o->cmsg_len = CMSG_LEN(sizeof got);
        std::memcpy(CMSG_DATA(o), &got, sizeof got);
        s.control_out_len = CMSG_SPACE(sizeof got);
      }
    }
  }
  batch.size_ = static_cast<std::size_t>(n);
  return batch.size_;
}

SendCounts DatagramSocket::send_replies(DatagramBatch& batch) noexcept {
  SendCounts counts;
  std::size_t k = 0;
  for (std::size_t i = 0; i < batch.size_; ++i) {
    DatagramBatch::Slot& s = batch.slots_[i];
    if (!s.reply) continue;
    s.reply = false;
    s.out = {s.in.iov_base, s.reply_len};
    ::msghdr& h = batch.out_[k].msg_hdr;
    h = {};
    h.msg_name = &s.peer;
    h.msg_namelen = s.peer_len;
    h.msg_iov = &s.out;
    h.msg_iovlen = 1;
    h.msg_control = s.control_out_len ? s.control_out.data() : nullptr;
    h.msg_controllen = s.control_out_len;
    ++k;
  }
  // sendmmsg stops at the first failing message and reports only how many went before it; the
  // next call then fails on that one, which is dropped, and the rest still go.
  std::size_t i = 0;
  while (i < k) {
    const int n = ::sendmmsg(fd_, batch.out_.data() + i, static_cast<unsigned>(k - i),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      counts.sent += static_cast<std::size_t>(n);
      i += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    counts.last_error = errno_code(n < 0 ? errno : EAGAIN);
    ++counts.dropped;
    ++i;
  }
  return counts;
}

void DatagramSocket::shutdown() noexcept {
  // On a socket that is not connected this says ENOTCONN, yet still marks it shut down and wakes
  // its readers, whose recvmsg returns 0 from then on (inet_shutdown, unix_shutdown).
  ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace duplex::net
