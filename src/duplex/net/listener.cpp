// Listener: bind/listen with the server's address rules (reuse on restart, no port sharing,
// owner-only Unix sockets, stale socket files replaced only when dead).
#include "duplex/net/listener.hpp"

#include "duplex/core/errors.hpp"
#include "duplex/net/socket_activation.hpp"
#include "duplex/net/socket_stream.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace duplex::net {
namespace {

Failure bind_failure(const Endpoint& ep, const std::error_code& ec) {
  // Asio 1.22's "asio.system" category does not compare equal to std::errc: use errno values.
  if (ec.value() == EADDRINUSE)
    return fail(ec, fmt::format("cannot listen on {}: address already in use (is another "
                                "server running?)",
                                ep.url()));
  if (ec.value() == EACCES)
    return fail(ec, fmt::format("cannot listen on {}: permission denied", ep.url()));
  if (ec.value() == EADDRNOTAVAIL)
    return fail(
        ec, fmt::format("cannot listen on {}: address not available on this machine", ep.url()));
  return fail(ec, fmt::format("cannot listen on {}: {}", ep.url(), ec.message()));
}

Result<ip::tcp::endpoint> resolve_for_bind(asio::io_context& ctx, const Endpoint& ep) {
  std::error_code ec;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (!ec) return ip::tcp::endpoint(addr, ep.port);
  ip::tcp::resolver resolver(ctx);
  auto results =
      resolver.resolve(ep.host, std::to_string(ep.port),
                       ip::tcp::resolver::passive | ip::tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    return fail(ec ? ec : errno_code(EADDRNOTAVAIL),
                fmt::format("cannot listen on {}: cannot resolve '{}'", ep.url(), ep.host));
  return results.begin()->endpoint();
}

// Unix socket files outlive crashed servers. Replace one only when connecting to it is refused,
// so that starting a second server never steals a live server's address.
Status prepare_unix_path(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};  // nothing there
  if (!S_ISSOCK(st.st_mode))
    return fail(
        errno_code(EADDRINUSE),
        fmt::format("cannot listen on unix://{}: the path exists and is not a socket", path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    return fail(errno_code(err),
                fmt::format("cannot listen on unix://{}: {}", path, std::strerror(err)));
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  const int err = errno;
  ::close(fd);
  if (rc == 0)
    return fail(errno_code(EADDRINUSE),
                fmt::format("cannot listen on unix://{}: another server is listening there", path));
  if (err != ECONNREFUSED)
    return fail(errno_code(err), fmt::format("cannot listen on unix://{}: existing socket file: {}",
                                             path, std::strerror(err)));
  ::unlink(path.c_str());
  return {};
}

}  // namespace

Result<Listener> Listener::open(asio::io_context& ctx, const Endpoint& ep) {
  std::error_code ec;
  if (ep.transport == Transport::tcp) {
    auto where = resolve_for_bind(ctx, ep);
    if (!where) return std::move(where).failure();
    ip::tcp::acceptor a(ctx);
    a.open(where->protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && where->protocol() == ip::tcp::v6()) a.set_option(asio::ip::v6_only(true), ec);
    if (!ec) a.bind(*where, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return bind_failure(ep, ec);
    Endpoint bound = ep;
    bound.port = a.local_endpoint().port();
    bound.host = where->address().to_string();
    return Listener(std::move(a), std::move(bound));
  }
  if (ep.transport == Transport::unix_stream) {
    if (auto ready = prepare_unix_path(ep.path); !ready) return std::move(ready).failure();
    unix_proto::acceptor a(ctx);
    a.open(unix_proto(), ec);
    if (!ec) {
      // The socket file's mode comes from the umask at bind(); owner-only from the first instant.
      const mode_t old = ::umask(0177);
      a.bind(unix_proto::endpoint(ep.path), ec);
      ::umask(old);
    }
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return bind_failure(ep, ec);
    Listener l(std::move(a), ep);
    struct stat st {};
    if (::stat(ep.path.c_str(), &st) == 0) l.owned_path_id_ = {st.st_dev, st.st_ino};
    return l;
  }
  return fail(errno_code(EPROTONOSUPPORT),
              fmt::format("cannot listen on {}: not a stream transport", ep.url()));
}

Result<Listener> Listener::adopt(asio::io_context& ctx, int fd, bool tls) {
  auto ep = socket_endpoint(fd);
  if (!ep) return std::move(ep).failure();
  ep->tls = tls;
  std::error_code ec;
  if (ep->transport == Transport::tcp) {
    ip::tcp::acceptor a(ctx);
    const bool v6 = ep->is_ipv6();
    a.assign(v6 ? ip::tcp::v6() : ip::tcp::v4(), fd, ec);
    if (ec) return bind_failure(*ep, ec);
    return Listener(std::move(a), std::move(*ep));
  }
  if (ep->transport == Transport::unix_stream) {
    unix_proto::acceptor a(ctx);
    a.assign(unix_proto(), fd, ec);
    if (ec) return bind_failure(*ep, ec);
    return Listener(std::move(a), std::move(*ep));
  }
  return fail(errno_code(EPROTOTYPE),
              fmt::format("cannot serve fd {} ({}): not a stream socket", fd, ep->url()));
}

Listener::~Listener() {
  if (!owned_path_id_) return;
  struct stat st {};
  if (::stat(bound_.path.c_str(), &st) == 0 && st.st_dev == owned_path_id_->first &&
      st.st_ino == owned_path_id_->second)
    ::unlink(bound_.path.c_str());
}

awaitable<Result<std::unique_ptr<Stream>>> Listener::accept(const asio::any_io_executor& ex) {
  if (auto* t = std::get_if<ip::tcp::acceptor>(&acceptor_)) {
    ip::tcp::endpoint remote;  // accept(2) fills it in: no getpeername(2) per connection
    auto [ec, s] = co_await t->async_accept(ex, remote, use_tuple);
    if (ec) co_return ec;
    co_return std::unique_ptr<Stream>(std::make_unique<SocketStream>(std::move(s), remote));
  }
  auto& u = std::get<unix_proto::acceptor>(acceptor_);
  auto [ec, s] = co_await u.async_accept(ex, use_tuple);
  if (ec) co_return ec;
  co_return std::unique_ptr<Stream>(std::make_unique<SocketStream>(std::move(s)));
}

void Listener::close() noexcept {
  std::visit(
      [](auto& a) {
        std::error_code ignored;
        a.close(ignored);
      },
      acceptor_);
}

}  // namespace duplex::net
