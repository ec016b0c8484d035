// A TLS test client over net::tls_dial, on an io_context of its own.
#include "support/tls_talk.hpp"

#include <array>
#include <chrono>

#include "duplex/net/endpoint.hpp"
#include "duplex/net/tls_context.hpp"
#include "duplex/net/tls_stream.hpp"

namespace duplex::test {

using asio::awaitable;
using Ms = std::chrono::milliseconds;

TlsTalk tls_talk(const std::string& url, const std::string& send,
                 const std::function<bool(const std::string&)>& done) {
  TlsTalk out;
  auto ep = net::parse_endpoint(url);
  if (!ep) {
    out.error = ep.message();
    return out;
  }
  auto ctx = net::TlsClientContext::create(nullptr);
  if (!ctx) {
    out.error = ctx.message();
    return out;
  }
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto tls = co_await net::tls_dial(**ctx, *ep, Ms(5000));
        if (!tls) {
          out.error = tls.message();
          co_return;
        }
        out.fingerprint = (*tls)->peer().key_fingerprint;
        auto [wec, wn] = co_await (*tls)->write(asio::buffer(send));
        if (wec) {
          out.error = wec.message();
          co_return;
        }
        std::array<char, 4096> buf{};
        while (!done(out.received)) {
          auto [ec, n] = co_await (*tls)->read_some(asio::buffer(buf));
          if (ec) break;
          out.received.append(buf.data(), n);
        }
        co_await (*tls)->shutdown_send();
        (*tls)->close();
      },
      asio::detached);
  io.run_for(std::chrono::seconds(10));
  return out;
}

}  // namespace duplex::test
