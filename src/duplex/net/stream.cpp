// AnyStream's non-template members.
#include "duplex/net/stream.hpp"

#include <sys/socket.h>

#include <fmt/format.h>

namespace duplex::net {

void AnyStream::shutdown_send() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.shutdown(asio::socket_base::shutdown_send, ignored);
      },
      s_);
}

void AnyStream::cancel() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.cancel(ignored);
      },
      s_);
}

void AnyStream::close() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.close(ignored);
      },
      s_);
}

void AnyStream::set_linger_zero() noexcept {
  std::visit(
      [](auto& s) {
        std::error_code ignored;
        s.set_option(asio::socket_base::linger(true, 0), ignored);
      },
      s_);
}

std::string AnyStream::peer_description() {
  if (auto* t = std::get_if<ip::tcp::socket>(&s_)) {
    std::error_code ec;
    auto ep = t->remote_endpoint(ec);
    if (ec) return "tcp:?";
    const auto addr = ep.address();
    return addr.is_v6() ? fmt::format("[{}]:{}", addr.to_string(), ep.port())
                        : fmt::format("{}:{}", addr.to_string(), ep.port());
  }
  auto& u = std::get<unix_proto::socket>(s_);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(u.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    return fmt::format("unix:pid={},uid={}", cred.pid, cred.uid);
  return "unix:?";
}

}  // namespace duplex::net
